"""The tracking endpoints end to end: edge -> Redis queue -> worker -> Postgres, all real."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg
import httpx

from eventplane.settings import Settings
from tests.conftest import Tenant, drain, make_tenant

TRACK = "/api/v1/tracking/track"
BATCH = "/api/v1/tracking/batch"


async def stored(pool: asyncpg.Pool, workspace_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM events WHERE workspace_id = $1 ORDER BY event_type, message_id", workspace_id
    )


async def test_track_and_batch_land_in_events(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    one = {"event_type": "signup", "user_id": "u1", "value": 9.5, "properties": {"plan": "pro", "n": [1, 2]}}
    r = await edge.post(TRACK, json=one, headers=tenant.headers)
    assert (r.status_code, r.json()) == (202, {"accepted": 1})
    batch = {"events": [{"event_type": "click", "anonymous_id": "a1"}, {"event_type": "view", "user_id": "u2"}]}
    r = await edge.post(BATCH, json=batch, headers={"Authorization": f"Bearer {tenant.key}"})
    assert (r.status_code, r.json()) == (202, {"accepted": 2})
    bare = [{"event_type": "zoom", "user_id": "u3"}]
    r = await edge.post(BATCH, json=bare, headers=tenant.headers)
    assert (r.status_code, r.json()) == (202, {"accepted": 1})

    await drain(settings)
    rows = await stored(pool, tenant.workspace_id)
    assert [row["event_type"] for row in rows] == ["click", "signup", "view", "zoom"]
    signup = rows[1]
    assert (signup["user_id"], signup["value"]) == ("u1", 9.5)
    assert json.loads(signup["properties"]) == {"plan": "pro", "n": [1, 2]}
    assert all(str(row["workspace_id"]) == tenant.workspace_id for row in rows)
    assert all(len(row["message_id"]) == 36 for row in rows)  # generated when absent


async def test_client_retry_with_new_sent_at_is_stored_once(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    event = {"event_type": "buy", "user_id": "u", "message_id": "retry-1", "timestamp": "2026-01-01T00:00:00Z"}
    first = await edge.post(TRACK, json={**event, "sent_at": "2026-01-01T00:00:05Z"}, headers=tenant.headers)
    # The SDK retries later: same message_id, a new sent_at, so a different corrected timestamp.
    again = await edge.post(TRACK, json={**event, "sent_at": "2026-01-01T00:07:00Z"}, headers=tenant.headers)
    assert first.status_code == again.status_code == 202
    await drain(settings)
    rows = await stored(pool, tenant.workspace_id)
    assert len(rows) == 1
    # Corrected for skew: received_at - (sent_at - timestamp) = received_at - 5 s on the first try.
    skew = rows[0]["received_at"] - rows[0]["timestamp"]
    assert dt.timedelta(seconds=4.9) < skew < dt.timedelta(seconds=5.1)
    usage = await pool.fetchval("SELECT sum(events) FROM usage_daily WHERE workspace_id = $1", tenant.workspace_id)
    assert usage == 1


async def test_same_message_id_twice_in_one_batch_is_stored_once(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    event = {"event_type": "dup", "user_id": "u", "message_id": "same"}
    r = await edge.post(BATCH, json={"events": [event, event]}, headers=tenant.headers)
    assert r.status_code == 202
    await drain(settings)
    assert len(await stored(pool, tenant.workspace_id)) == 1


async def test_key_of_workspace_a_writes_only_to_a(
    edge: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings
) -> None:
    a, b = await make_tenant(pool), await make_tenant(pool)
    # A body naming another workspace is ignored: the key alone decides where events go.
    event = {"event_type": "x", "user_id": "u", "workspace_id": b.workspace_id, "message_id": str(uuid.uuid4())}
    r = await edge.post(TRACK, json=event, headers=a.headers)
    assert r.status_code == 202
    await drain(settings)
    assert len(await stored(pool, a.workspace_id)) == 1
    assert await stored(pool, b.workspace_id) == []


async def test_gzip_body_is_accepted(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    import gzip

    import orjson

    body = gzip.compress(orjson.dumps({"events": [{"event_type": "gz", "user_id": "u"}] * 3}))
    r = await edge.post(BATCH, content=body, headers={**tenant.headers, "Content-Encoding": "gzip"})
    assert (r.status_code, r.json()) == (202, {"accepted": 3})
    await drain(settings)
    assert len(await stored(pool, tenant.workspace_id)) == 3
