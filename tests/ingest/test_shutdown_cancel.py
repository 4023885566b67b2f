"""The edge's background loops stop when cancelled, whatever Redis call a cancellation interrupts
(redis-py can turn a CancelledError inside a pipeline into a connection error; a loop that suppresses
those errors then ran forever and the edge's shutdown never finished)."""

from __future__ import annotations

import asyncio

import asyncpg

from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from ingest.auth import KeyCache
from ingest.batcher import Batcher
from ingest.metrics import EdgeMetrics


async def test_watch_depth_stops_when_cancelled_mid_redis_call(fresh: Settings) -> None:
    redis = connect_redis(fresh.redis_dsn)
    names, metrics = RedisNames(fresh.redis_prefix), EdgeMetrics(lambda: (0, 0, 0))
    batcher = Batcher(redis, [redis], names, metrics, job_max_events=10, high_water=10, retry_after=1)
    try:
        for i in range(600):  # cancel at many points of the poll's round trip
            task = asyncio.create_task(batcher.watch_depth())
            await asyncio.sleep((i % 60) * 0.00005)
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2.0)
            assert done, f"watch_depth still running 2 s after cancel (attempt {i}): {task!r}"
    finally:
        await redis.aclose()


async def test_key_invalidation_listener_stops_when_cancelled_mid_redis_call(
    fresh: Settings, pool: asyncpg.Pool
) -> None:
    redis = connect_redis(fresh.redis_dsn)
    cache = KeyCache(redis, pool, RedisNames(fresh.redis_prefix), ttl=1.0, negative_ttl=1.0)
    try:
        for i in range(200):
            task = asyncio.create_task(cache.listen())
            await asyncio.sleep((i % 80) * 0.0001)
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=3.0)
            assert done, f"listen still running 3 s after cancel (attempt {i}): {task!r}"
    finally:
        await redis.aclose()
