"""Client reports: what SDKs dropped before sending, counted once per report at the edge, folded into
Postgres by the worker and shown in the workspace's usage."""

from __future__ import annotations

import datetime as dt
import random
import string
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from api.app import create_app as create_api
from eventplane import client_drops
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain

BATCH = "/api/v1/tracking/batch"


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


def reason() -> str:
    """A reason of this test's own: the edge's counters are shared by the whole session."""
    return "test_" + "".join(random.choices(string.ascii_lowercase, k=10))


def report(dropped: dict[str, Any], report_id: str | None = None) -> dict[str, Any]:
    return {"id": report_id or str(uuid.uuid4()), "dropped": dropped}


async def dropped_metric(edge: httpx.AsyncClient, name: str) -> float:
    for family in text_string_to_metric_families((await edge.get("/metrics")).text):
        for sample in family.samples:
            if sample.name == "eventplane_ingest_client_dropped_total" and sample.labels == {"reason": name}:
                return sample.value
    return 0.0


async def usage_dropped(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, int]:
    r = await api.get(f"/api/v1/workspaces/{tenant.workspace_id}/usage", headers={"X-API-Key": tenant.key})
    assert r.status_code == 200, r.text
    dropped: dict[str, int] = r.json()["client_dropped"]
    return dropped


async def test_report_counted_once_across_a_retry_and_visible_in_usage(
    edge: httpx.AsyncClient,
    api: httpx.AsyncClient,
    tenant: Tenant,
    pool: asyncpg.Pool,
    redis: Redis,
    keys: RedisNames,
    settings: Settings,
) -> None:
    full, exhausted = reason(), reason()
    body = {
        "events": [{"event_type": "buy", "user_id": "u1", "message_id": "m-1"}],
        "client_report": report({full: 7, exhausted: 2}),
    }
    for _ in range(2):  # the SDK did not see the first 202 and sends the same batch again
        r = await edge.post(BATCH, json=body, headers=tenant.headers)
        assert (r.status_code, r.json()) == (202, {"accepted": 1})
    assert await dropped_metric(edge, full) == 7
    assert await dropped_metric(edge, exhausted) == 2
    assert await usage_dropped(api, tenant) == {}  # not folded yet

    await drain(settings)
    assert await client_drops.fold(redis, keys, pool) >= 1
    assert await usage_dropped(api, tenant) == {full: 7, exhausted: 2}
    assert await pool.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", tenant.workspace_id) == 1

    # A later report adds to the day's count; folding again counts nothing twice.
    later = {"events": [], "client_report": report({full: 1})}
    assert (await edge.post(BATCH, json=later, headers=tenant.headers)).status_code == 202
    await client_drops.fold(redis, keys, pool)
    await client_drops.fold(redis, keys, pool)
    assert await usage_dropped(api, tenant) == {full: 8, exhausted: 2}


async def test_batch_made_only_to_report_is_accepted(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    name = reason()
    r = await edge.post(BATCH, json={"events": [], "client_report": report({name: 3})}, headers=tenant.headers)
    assert (r.status_code, r.json()) == (202, {"accepted": 0})
    await client_drops.fold(redis, keys, pool)
    rows = await pool.fetch(
        "SELECT day, reason, dropped FROM client_drops_daily WHERE workspace_id = $1", tenant.workspace_id
    )
    assert [(row["reason"], row["dropped"]) for row in rows] == [(name, 3)]
    assert rows[0]["day"] == dt.datetime.now(dt.UTC).date()


async def test_empty_batch_without_a_report_is_still_refused(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await edge.post(BATCH, json={"events": []}, headers=tenant.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "VALIDATION_ERROR")


async def test_invalid_reports_are_refused_whole(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames, settings: Settings
) -> None:
    name = reason()
    event = {"event_type": "e", "user_id": "u", "message_id": f"bad-{uuid.uuid4()}"}
    cases: list[tuple[Any, str]] = [
        (report({"Queue-Full": 1}), "client_report.dropped"),
        (report({"a" * 41: 1}), "client_report.dropped"),
        (report({name: -1}), "client_report.dropped[...]"),
        (report({name: 10**9 + 1}), "client_report.dropped[...]"),
        (report({name: 1.5}), "client_report.dropped[...]"),
        (report({f"r_{c}": 1 for c in string.ascii_lowercase[:17]}), "client_report.dropped"),
        (report({name: 1}, report_id="not-a-uuid"), "client_report.id"),
        ({"dropped": {name: 1}}, "client_report.id"),
        ({"id": str(uuid.uuid4())}, "client_report.dropped"),
        ({**report({name: 1}), "extra": 1}, "client_report"),
        ([1], "client_report"),
    ]
    for bad, field in cases:
        r = await edge.post(BATCH, json={"events": [event], "client_report": bad}, headers=tenant.headers)
        assert r.status_code == 400, (bad, r.text)
        error = r.json()["error"]
        assert (error["code"], error["details"]["field"]) == ("VALIDATION_ERROR", field), (bad, error)
    # A valid report on a batch refused for its events is not counted either.
    refused = {"events": [{"event_type": "e"}], "client_report": report({name: 5})}
    assert (await edge.post(BATCH, json=refused, headers=tenant.headers)).status_code == 400
    assert await dropped_metric(edge, name) == 0
    await drain(settings)
    await client_drops.fold(redis, keys, pool)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", tenant.workspace_id) == 0
    assert (
        await pool.fetchval("SELECT count(*) FROM client_drops_daily WHERE workspace_id = $1", tenant.workspace_id) == 0
    )


async def test_boundaries_are_accepted(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    dropped = {f"r_{c}": 0 for c in string.ascii_lowercase[:15]} | {"a" * 40: 10**9}
    r = await edge.post(BATCH, json={"events": [], "client_report": report(dropped)}, headers=tenant.headers)
    assert (r.status_code, r.json()) == (202, {"accepted": 0})
