"""The config document: its version counts committed changes, and publish reaches subscribers."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from redis.asyncio import Redis

from eventplane import flagconfig
from eventplane.redis_names import RedisNames
from tests.conftest import make_tenant

_FLAG = """
INSERT INTO feature_flags (workspace_id, key, name, enabled, salt, rollout, rules, variations)
VALUES ($1, 'new-checkout', 'New checkout', true, 'a1b2c3d4e5f6', 12.5,
        '[{"id": "r1", "match": "all", "conditions": [], "rollout": 100}]',
        '[{"key": "blue", "value": "#00f", "weight": 50}, {"key": "red", "value": "#f00", "weight": 50}]')
"""
_EXPERIMENT = """
INSERT INTO experiments (workspace_id, key, name, salt, variants, conversion_event, namespace_name,
                         namespace_start, namespace_end)
VALUES ($1, 'price', 'Price', '0123456789ab', '[{"key": "control", "weight": 50}, {"key": "b", "weight": 50}]',
        'purchase', 'checkout', 0, 5000)
"""


async def test_empty_workspace_is_version_zero(pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool)
    config = await flagconfig.load(pool, tenant.workspace_id)
    assert config.version == 0
    assert config.etag == f'"{tenant.workspace_id}:0"'
    doc = json.loads(config.body)
    assert (doc["workspace_id"], doc["version"], doc["flags"], doc["experiments"]) == (tenant.workspace_id, 0, [], [])


async def test_document_holds_definitions_and_the_bumped_version(pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(_FLAG, tenant.workspace_id)
            assert await flagconfig.bump(conn, tenant.workspace_id) == 1
        async with conn.transaction():
            await conn.execute(_EXPERIMENT, tenant.workspace_id)
            assert await flagconfig.bump(conn, tenant.workspace_id) == 2
        config = await flagconfig.load(conn, tenant.workspace_id)
    doc = json.loads(config.body)
    assert doc["version"] == config.version == 2
    assert doc["flags"] == [
        {"key": "new-checkout", "enabled": True, "salt": "a1b2c3d4e5f6", "rollout": 12.5,
         "rules": [{"id": "r1", "match": "all", "conditions": [], "rollout": 100}], "value_type": "boolean",
         "default_value": False, "on_value": True,
         "values": [{"key": "blue", "value": "#00f", "weight": 50.0}, {"key": "red", "value": "#f00", "weight": 50.0}]}
    ]  # fmt: skip
    assert doc["experiments"] == [
        {"key": "price", "status": "draft", "salt": "0123456789ab", "bucket_version": 1, "allocation": 100.0,
         "targeting": {"match": "all", "conditions": []}, "namespace": {"name": "checkout", "start": 0, "end": 5000},
         "variants": [{"key": "control", "weight": 50.0}, {"key": "b", "weight": 50.0}], "sticky": "local"}
    ]  # fmt: skip


async def test_publish_reaches_a_subscriber(redis: Redis, keys: RedisNames) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.config_channel)
    try:
        await flagconfig.publish(redis, keys, "ws-1")
        async with asyncio.timeout(5):
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    break
        assert message["data"] in (b"ws-1", "ws-1")
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
