"""The edge's config cache on its own (real Redis and Postgres), where the app cannot easily reach: an
edge that is not subscribed to the config channel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from eventplane.redis_names import RedisNames
from ingest.asgi import Message
from ingest.configcache import ConfigCache
from ingest.sse import Streams
from tests.conftest import make_tenant
from tests.ingest import flagseed


async def test_without_the_channel_a_change_still_shows_within_about_a_second(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames
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


async def test_a_stream_on_an_unsubscribed_edge_still_pushes_a_change_within_about_a_second(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    """The stream's own loop, driven through its ASGI callables (the app's socket path is in
    test_flags_config.py): with no channel to announce changes it looks every second."""
    tenant = await make_tenant(pool, ["read"])
    cache = ConfigCache(redis, pool, keys, ttl=300, unsubscribed_ttl=0.2)
    streams = Streams(cache, per_workspace=5, total=5, heartbeat=15)
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flagseed.flag("a")])
    sent: asyncio.Queue[Message] = asyncio.Queue()
    hang_up = asyncio.Event()

    async def send(message: Message) -> None:
        await sent.put(message)

    async def receive() -> Message:
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def next_config() -> dict[str, Any]:
        while True:
            body = (await sent.get()).get("body", b"")
            if body.startswith(b"event: config"):
                doc: dict[str, Any] = orjson.loads(body.split(b"data: ", 1)[1])
                return doc

    serving = asyncio.create_task(streams.serve(tenant.workspace_id, receive, send, "req-1"))
    try:
        first = await asyncio.wait_for(next_config(), 2)
        v2 = await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flagseed.flag("b")])
        changed = time.monotonic()
        pushed = await asyncio.wait_for(next_config(), 2)
        assert time.monotonic() - changed < 1.5
        assert (first["version"], pushed["version"]) == (v2 - 1, v2)
    finally:
        hang_up.set()
        await asyncio.wait_for(serving, 5)
