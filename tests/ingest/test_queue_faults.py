"""The edge when the queue cannot take events: 503 with Retry-After, never a 202 for an event not queued."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis

from eventplane import queue, servers
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import drain, make_tenant, own_valkey, running_edge

BATCH = "/api/v1/tracking/batch"
EVENTS = {"events": [{"event_type": "e", "user_id": "u"}]}


async def _until(edge: httpx.AsyncClient, headers: dict[str, str], status: int, limit: float) -> httpx.Response:
    deadline = time.monotonic() + limit
    while True:
        r = await edge.post(BATCH, json=EVENTS, headers=headers)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.05)


async def test_redis_down_gives_503_with_retry_after_then_recovers(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    with own_valkey(tmp_path) as (url, data):
        local = replace(settings, redis_url=url)
        before, during = await make_tenant(pool), await make_tenant(pool)
        async with running_edge(local) as edge:
            assert (await edge.post(BATCH, json=EVENTS, headers=before.headers)).status_code == 202
            servers.stop_valkey(data)
            # A cached key and a key never seen (checked against Postgres): both get 503, not 202 or 500.
            for t in (before, during):
                r = await edge.post(BATCH, json=EVENTS, headers=t.headers)
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "QUEUE_UNAVAILABLE"
                assert int(r.headers["retry-after"]) > 0
            servers.ensure_valkey(data)
            assert (await _until(edge, during.headers, 202, limit=10)).status_code == 202
        await drain(local)
    stored = await pool.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = ANY($1::uuid[])", [before.workspace_id, during.workspace_id]
    )
    assert stored == 2  # one before the outage, one after; none from the 503s


async def test_queue_over_high_water_gives_503_queue_full(fresh: Settings, pool: asyncpg.Pool, redis: Redis) -> None:
    t = await make_tenant(pool)
    capped = replace(fresh, queue_high_water=100)
    async with running_edge(capped) as edge:
        assert (await edge.post(BATCH, json=EVENTS, headers=t.headers)).status_code == 202
        await queue.enqueue(
            redis,
            RedisNames(capped.redis_prefix),
            [([("x", "m", "e", "u", None, None, b"{}", None, None, 0, None)] * 150, [])],
        )
        r = await _until(edge, t.headers, 503, limit=2)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "QUEUE_FULL"
        assert r.headers["retry-after"]
    await redis.delete(RedisNames(capped.redis_prefix).queued_events)
