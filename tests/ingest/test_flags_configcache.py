"""The edge's config cache on its own (real Redis and Postgres), where the app cannot easily reach: an
edge that is not subscribed to the config channel."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from redis.asyncio import Redis

from eventplane.queue import Keys
from ingest.configcache import ConfigCache
from tests.conftest import make_tenant
from tests.ingest import flagseed


async def test_without_the_channel_a_change_still_shows_within_about_a_second(
    pool: asyncpg.Pool, redis: Redis, keys: Keys
) -> None:
    tenant = await make_tenant(pool, ["read"])
    cache = ConfigCache(redis, pool, keys, ttl=300, unsubscribed_ttl=0.2)  # listen() never runs: no channel
    v1 = await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flagseed.flag("a")])
    assert (await cache.get(tenant.workspace_id)).version == v1
    assert (await cache.get(tenant.workspace_id)).version == v1
    assert (cache.hits, cache.misses) == (1, 1)  # kept a moment: Postgres is not read per request

    v2 = await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flagseed.flag("b")])
    changed = time.monotonic()
    while (await cache.get(tenant.workspace_id)).version != v2:
        assert time.monotonic() - changed < 1.0, "an unsubscribed edge kept an old config past its short TTL"
        await asyncio.sleep(0.02)
    assert sorted((await cache.get(tenant.workspace_id)).flags) == ["a", "b"]
