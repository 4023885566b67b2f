"""The edge queues each workspace's events on its instance's Redis, and a worker serving that instance
stores them in the instance's Postgres (ingest/instances.py, workers/main.py), on the suite's servers."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from eventplane import apikeys, instances, queue, tenants
from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain, registered_instance, running_edge
from tests.ingest import flagseed


async def _tenant(pool: asyncpg.Pool, instance: str | None) -> Tenant:
    slug = f"ri-{uuid.uuid4().hex[:10]}"
    workspace = await tenants.create_workspace(pool, name=slug, slug=slug, instance=instance)
    record, key = await tenants.create_api_key(pool, workspace_id=workspace["id"], name="t", scope_names=["write"])
    return Tenant(workspace, key, record["id"])


async def _count(dsn: str, workspace_id: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", workspace_id)
        return n
    finally:
        await conn.close()


def _batch(n: int, tag: str) -> dict[str, object]:
    return {"events": [{"event_type": "e", "user_id": "u", "message_id": f"{tag}-{i}"} for i in range(n)]}


async def test_events_go_to_the_workspace_instance_only(fresh: Settings, pool: asyncpg.Pool) -> None:
    async with registered_instance(fresh, "rx") as rx:
        on_hub, on_rx = await _tenant(pool, "default"), await _tenant(pool, "rx")
        async with running_edge(fresh) as edge:
            r = await edge.post("/api/v1/tracking/batch", json=_batch(3, "h"), headers=on_hub.headers)
            assert r.status_code == 202, r.text
            r = await edge.post("/api/v1/tracking/batch", json=_batch(5, "x"), headers=on_rx.headers)
            assert r.status_code == 202, r.text
            r = await edge.post("/api/v1/tracking/track", json={"event_type": "one", "user_id": "u"},
                                headers=on_rx.headers)  # fmt: skip
            assert r.status_code == 202, r.text
        names = RedisNames(fresh.redis_prefix)
        hub_redis, rx_redis = connect_redis(fresh.redis_dsn), connect_redis(rx.redis_url)
        try:
            assert (await queue.depth(hub_redis, names))[0] == 3
            assert (await queue.depth(rx_redis, names))[0] == 6
        finally:
            await hub_redis.aclose()
            await rx_redis.aclose()
        await drain(fresh)  # the default instance's worker: the hub's queue and Postgres
        assert await _count(fresh.dsn, on_hub.workspace_id) == 3
        assert await _count(rx.database_url, on_rx.workspace_id) == 0
        await drain(instances.settings_for(fresh, rx))  # `eventplane worker --instance rx`
        assert await _count(rx.database_url, on_rx.workspace_id) == 6
        assert await _count(fresh.dsn, on_rx.workspace_id) == 0
        assert await _count(rx.database_url, on_hub.workspace_id) == 0


async def test_an_unreachable_instance_gets_503_and_only_its_own(fresh: Settings, pool: asyncpg.Pool) -> None:
    """Nothing listens on port 1: the instance's requests wait at most the connect timeout, answer 503 with
    Retry-After, and the default instance's requests, sent at the same time, are answered 202."""
    await pool.execute("INSERT INTO instances (name, database_url, redis_url) VALUES ('down', $1, $2)",
                       fresh.dsn, "redis://127.0.0.1:1/0")  # fmt: skip
    try:
        on_hub, on_down = await _tenant(pool, "default"), await _tenant(pool, "down")
        async with running_edge(fresh) as edge:
            down = edge.post("/api/v1/tracking/batch", json=_batch(2, "d"), headers=on_down.headers)
            up = [edge.post("/api/v1/tracking/batch", json=_batch(2, f"u{i}"), headers=on_hub.headers)
                  for i in range(5)]  # fmt: skip
            answers = await asyncio.gather(down, *up)
        assert answers[0].status_code == 503, answers[0].text
        assert answers[0].json()["error"]["code"] == "QUEUE_UNAVAILABLE"
        assert answers[0].headers["retry-after"] == str(fresh.retry_after_seconds)
        assert [a.status_code for a in answers[1:]] == [202] * 5
    finally:
        await pool.execute("DELETE FROM workspaces WHERE instance = 'down'")
        await pool.execute("DELETE FROM instances WHERE name = 'down'")


async def test_exposures_of_the_flag_routes_go_to_the_instance(fresh: Settings, pool: asyncpg.Pool) -> None:
    """`$exposure` events queued by the assign route travel like tracked events: to the workspace's instance."""
    async with registered_instance(fresh, "rz") as rz:
        tenant = await _tenant(pool, "rz")
        hub_redis, rz_redis = connect_redis(fresh.redis_dsn), connect_redis(rz.redis_url)
        names = RedisNames(fresh.redis_prefix)
        try:
            async with running_edge(fresh) as edge:
                await flagseed.put(pool, hub_redis, apikeys.redis_keys(fresh), tenant.workspace_id,
                                   experiments=[flagseed.experiment("checkout")])  # fmt: skip
                r = await edge.post("/api/v1/experiments/checkout/assign", json={"user_id": "u1"},
                                    headers=tenant.headers)  # fmt: skip
                assert r.status_code == 200, r.text
            assert (await queue.depth(rz_redis, names))[0] == 1
            assert (await queue.depth(hub_redis, names))[0] == 0
        finally:
            await hub_redis.aclose()
            await rz_redis.aclose()
