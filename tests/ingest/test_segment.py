"""Segment's HTTP tracking API at the edge (/v1/track, /v1/batch, ...), end to end into Postgres."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import uuid
from typing import Any

import asyncpg
import httpx

from eventplane.settings import Settings
from tests.conftest import Tenant, drain

ALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")


async def stored(pool: asyncpg.Pool, tenant: Tenant) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch("SELECT * FROM events WHERE workspace_id = $1", tenant.workspace_id)
    return {row["message_id"]: row for row in rows}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def error(r: httpx.Response) -> tuple[int, str]:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return r.status_code, body["error"]["code"]


CONTEXT = {"library": {"name": "analytics-python", "version": "2.3.4"}, "ip": "203.0.113.9", "locale": "fr-FR",
           "userAgent": "Mozilla/5.0"}  # fmt: skip
MESSAGES: dict[str, dict[str, Any]] = {
    "track": {"event": "Order Completed", "userId": "u1", "properties": {"revenue": 9.5}},
    "identify": {"userId": "u1", "traits": {"email": "ada@example.com", "plan": "pro"}},
    "page": {"anonymousId": "a1", "name": "Pricing", "category": "Docs", "properties": {"path": "/pricing"}},
    "screen": {"userId": "u1", "name": "Home", "properties": {"tab": 2}},
    "group": {"userId": "u1", "groupId": "g-7", "traits": {"name": "Acme"}},
    "alias": {"userId": "u1", "previousId": "a1"},
}
EXPECTED: dict[str, tuple[str, str | None, str | None, dict[str, Any]]] = {
    "track": ("Order Completed", "u1", None, {"revenue": 9.5}),
    "identify": ("$identify", "u1", None, {"$traits": {"email": "ada@example.com", "plan": "pro"}}),
    "page": ("$page", None, "a1", {"path": "/pricing", "$name": "Pricing", "$category": "Docs"}),
    "screen": ("$screen", "u1", None, {"tab": 2, "$name": "Home"}),
    "group": ("$group", "u1", None, {"$group_id": "g-7", "$traits": {"name": "Acme"}}),
    "alias": ("$alias", "u1", None, {"$previous_id": "a1"}),
}


def check(row: asyncpg.Record, kind: str) -> None:
    event_type, user_id, anonymous_id, properties = EXPECTED[kind]
    assert (row["event_type"], row["user_id"], row["anonymous_id"]) == (event_type, user_id, anonymous_id)
    assert json.loads(row["properties"]) == properties


async def test_each_type_on_its_route_is_stored_with_its_fields(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    for kind in ALL_TYPES:
        body = {**MESSAGES[kind], "messageId": f"one-{kind}", "context": CONTEXT, "integrations": {"All": True}}
        r = await edge.post(f"/v1/{kind}", json=body, headers=tenant.headers)
        assert (r.status_code, r.json()) == (200, {"success": True}), r.text
    await drain(settings)
    rows = await stored(pool, tenant)
    assert set(rows) == {f"one-{kind}" for kind in ALL_TYPES}
    for kind in ALL_TYPES:
        check(rows[f"one-{kind}"], kind)
        assert json.loads(rows[f"one-{kind}"]["context"]) == CONTEXT


async def test_batch_of_every_type(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    batch = [{**MESSAGES[kind], "type": kind, "messageId": f"b-{kind}"} for kind in ALL_TYPES]
    batch[0]["context"] = {"library": {"name": "own"}}
    body = {"batch": batch, "context": {"library": {"name": "batch-level"}}, "writeKey": tenant.key}
    r = await edge.post("/v1/batch", json=body)
    assert (r.status_code, r.json()) == (200, {"success": True}), r.text
    await drain(settings)
    rows = await stored(pool, tenant)
    for kind in ALL_TYPES:
        check(rows[f"b-{kind}"], kind)
    # A message's own context wins; the others get the batch's.
    assert json.loads(rows["b-track"]["context"]) == {"library": {"name": "own"}}
    assert json.loads(rows["b-alias"]["context"]) == {"library": {"name": "batch-level"}}


async def test_every_way_of_sending_the_key(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    forms: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
        "body": ({"writeKey": tenant.key}, {}),
        "basic": ({}, basic(tenant.key)),
        "bearer": ({}, {"Authorization": f"Bearer {tenant.key}"}),
        "header": ({}, {"X-API-Key": tenant.key}),
    }
    for form, (extra, headers) in forms.items():
        body = {"event": "signed", "userId": "u", "messageId": f"auth-{form}", **extra}
        r = await edge.post("/v1/track", json=body, headers=headers)
        assert r.status_code == 200, (form, r.text)
        batch = {"batch": [{"type": "track", "event": "e", "userId": "u", "messageId": f"auth-b-{form}"}], **extra}
        r = await edge.post("/v1/batch", json=batch, headers=headers)
        assert r.status_code == 200, (form, r.text)
    await drain(settings)
    assert set(await stored(pool, tenant)) == {f"auth{b}-{form}" for form in forms for b in ("", "-b")}


async def test_bad_keys_are_refused(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    event = {"event": "e", "userId": "u"}
    r = await edge.post("/v1/track", json=event)
    assert error(r) == (401, "AUTH_ERROR")
    assert "writeKey" in r.json()["error"]["message"]
    r = await edge.post("/v1/track", json={**event, "writeKey": "ep_live_wrong"})
    assert error(r) == (401, "AUTH_ERROR")
    r = await edge.post("/v1/batch", json={"batch": [], "writeKey": 42})
    assert error(r) == (401, "AUTH_ERROR")
    r = await edge.post("/v1/track", content=b"{not json", headers={"Content-Type": "application/json"})
    assert error(r) == (400, "INVALID_JSON")
    revoked_basic = basic(tenant.key[:-1] + ("A" if tenant.key[-1] != "A" else "B"))
    r = await edge.post("/v1/track", json=event, headers=revoked_basic)
    assert error(r) == (401, "AUTH_ERROR")
    # A key in a header decides, whatever the body says.
    r = await edge.post("/v1/track", json={**event, "writeKey": tenant.key}, headers={"X-API-Key": "nope"})
    assert error(r) == (401, "AUTH_ERROR")


async def test_invalid_messages_are_refused_with_their_field(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    cases: list[tuple[str, Any, str, str]] = [
        ("/v1/track", {"userId": "u"}, "VALIDATION_ERROR", "event"),
        ("/v1/track", {"event": "e"}, "VALIDATION_ERROR", "userId"),
        ("/v1/track", {"event": "e", "userId": 7}, "VALIDATION_ERROR", "userId"),
        ("/v1/track", {"event": "e", "userId": "u", "properties": [1]}, "VALIDATION_ERROR", "properties"),
        ("/v1/track", {"event": "e", "userId": "u", "context": "x"}, "VALIDATION_ERROR", "context"),
        ("/v1/track", {"event": "e", "userId": "u", "timestamp": "yesterday"}, "VALIDATION_ERROR", "timestamp"),
        ("/v1/track", {"event": "e", "userId": "u", "messageId": "m" * 101}, "VALIDATION_ERROR", "messageId"),
        ("/v1/track", {"event": "e\u0000", "userId": "u"}, "INVALID_CHARACTER", "event"),
        ("/v1/group", {"userId": "u"}, "VALIDATION_ERROR", "groupId"),
        ("/v1/alias", {"userId": "u"}, "VALIDATION_ERROR", "previousId"),
        ("/v1/identify", {"userId": "u", "traits": 3}, "VALIDATION_ERROR", "traits"),
        ("/v1/batch", {"batch": [{"event": "e", "userId": "u"}]}, "VALIDATION_ERROR", "batch[0].type"),
        ("/v1/batch", {"batch": [{"type": "wave", "userId": "u"}]}, "VALIDATION_ERROR", "batch[0].type"),
        ("/v1/batch", {"batch": [MESSAGES["track"] | {"type": "track"}, {"type": "track", "userId": "u"}]},
         "VALIDATION_ERROR", "batch[1].event"),
        ("/v1/batch", {"batch": []}, "VALIDATION_ERROR", "batch"),
        ("/v1/batch", {"events": []}, "VALIDATION_ERROR", "batch"),
        ("/v1/batch", [MESSAGES["track"]], "VALIDATION_ERROR", "$"),
    ]  # fmt: skip
    for path, body, code, field in cases:
        r = await edge.post(path, json=body, headers=tenant.headers)
        assert error(r) == (400, code), (path, body, r.text)
        assert r.json()["error"]["details"]["field"] == field, (path, body, r.text)
    r = await edge.get("/v1/track", headers=tenant.headers)
    assert error(r) == (405, "METHOD_NOT_ALLOWED")


async def test_limits_are_the_same_as_our_own(
    edge: httpx.AsyncClient, tenant: Tenant, settings: Settings, pool: asyncpg.Pool
) -> None:
    big = {"event": "e", "userId": "u", "properties": {"pad": "x" * settings.max_event_bytes}}
    r = await edge.post("/v1/track", json=big, headers=tenant.headers)
    assert error(r) == (400, "EVENT_TOO_LARGE")
    small = {"type": "track", "event": "e", "userId": "u"}
    r = await edge.post("/v1/batch", json={"batch": [small, big | {"type": "track"}]}, headers=tenant.headers)
    assert error(r) == (400, "EVENT_TOO_LARGE")
    assert r.json()["error"]["details"]["index"] == 1
    many = {"batch": [small] * (settings.max_batch_events + 1)}
    r = await edge.post("/v1/batch", json=many, headers=tenant.headers)
    assert error(r) == (413, "BATCH_TOO_LARGE")
    huge = {"batch": [small | {"properties": {"pad": "x" * 30_000}}] * 20}
    r = await edge.post("/v1/batch", json=huge, headers=tenant.headers)
    assert error(r) == (413, "PAYLOAD_TOO_LARGE")
    # At the limits: accepted; gzip works as on our own routes.
    full = {"batch": [small | {"messageId": f"lim-{i}"} for i in range(settings.max_batch_events)]}
    r = await edge.post(
        "/v1/batch",
        content=gzip.compress(json.dumps(full).encode()),
        headers={**tenant.headers, "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    await drain(settings)
    assert len(await stored(pool, tenant)) == settings.max_batch_events


async def test_retried_message_id_is_stored_once_and_skew_is_corrected(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    message_id = str(uuid.uuid4())
    event = {"type": "track", "event": "buy", "userId": "u", "messageId": message_id,
             "timestamp": "2026-01-01T00:00:00Z"}  # fmt: skip
    first = {"batch": [event], "sentAt": "2026-01-01T00:00:05Z"}
    retry = {"batch": [event], "sentAt": "2026-01-01T00:09:00Z"}  # the SDK's retry, minutes later
    # The first copy is stored before the retry arrives, as when an SDK's request timed out after the edge
    # accepted it. (Two copies in flight at once go in separate jobs that workers run concurrently: either
    # may be the one stored, exactly once; the test once assumed the first and failed in CI.)
    for body in (first, retry):
        r = await edge.post("/v1/batch", json=body, headers=tenant.headers)
        assert r.status_code == 200
        await drain(settings)
    # A message's own sentAt wins over the batch's.
    own = {**event, "messageId": "own-sent-at", "sentAt": "2026-01-01T00:01:00Z"}
    r = await edge.post("/v1/batch", json={"batch": [own], "sentAt": "2026-01-01T00:00:05Z"}, headers=tenant.headers)
    assert r.status_code == 200
    await drain(settings)
    rows = await stored(pool, tenant)
    assert set(rows) == {message_id, "own-sent-at"}
    skew = rows[message_id]["received_at"] - rows[message_id]["timestamp"]
    assert dt.timedelta(seconds=4.9) < skew < dt.timedelta(seconds=5.1)
    skew = rows["own-sent-at"]["received_at"] - rows["own-sent-at"]["timestamp"]
    assert dt.timedelta(seconds=59.9) < skew < dt.timedelta(seconds=60.1)
    usage = await pool.fetchval("SELECT sum(events) FROM usage_daily WHERE workspace_id = $1", tenant.workspace_id)
    assert usage == 2


async def test_our_own_endpoints_store_context_too(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    event = {"event_type": "e", "user_id": "u", "message_id": "ctx", "context": {"locale": "de-DE"}}
    assert (await edge.post("/api/v1/tracking/track", json=event, headers=tenant.headers)).status_code == 202
    plain = {"event_type": "e", "user_id": "u", "message_id": "no-ctx"}
    assert (await edge.post("/api/v1/tracking/track", json=plain, headers=tenant.headers)).status_code == 202
    bad = {**event, "context": [1]}
    r = await edge.post("/api/v1/tracking/track", json=bad, headers=tenant.headers)
    assert error(r) == (400, "VALIDATION_ERROR")
    await drain(settings)
    rows = await stored(pool, tenant)
    assert json.loads(rows["ctx"]["context"]) == {"locale": "de-DE"}
    assert rows["no-ctx"]["context"] is None
