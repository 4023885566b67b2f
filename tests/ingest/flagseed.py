"""Flag and experiment definitions written straight into Postgres the way the api commits them: the row,
the version bump in the same transaction, then the publish on the config channel."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from eventplane import flagconfig
from eventplane.redis_names import RedisNames

_FLAG = """
INSERT INTO feature_flags (workspace_id, key, name, enabled, salt, rollout, rules, value_type, default_value,
                           on_value, variations)
VALUES ($1, $2, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9::jsonb, $10::jsonb)
ON CONFLICT (workspace_id, key) DO UPDATE SET enabled = EXCLUDED.enabled, salt = EXCLUDED.salt,
    rollout = EXCLUDED.rollout, rules = EXCLUDED.rules, value_type = EXCLUDED.value_type,
    default_value = EXCLUDED.default_value, on_value = EXCLUDED.on_value, variations = EXCLUDED.variations
"""
_EXPERIMENT = """
INSERT INTO experiments (workspace_id, key, name, status, salt, bucket_version, allocation, targeting, variants,
                         conversion_event, namespace_name, namespace_start, namespace_end, sticky)
VALUES ($1, $2, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, 'convert', $9, $10, $11, $12)
ON CONFLICT (workspace_id, key) DO UPDATE SET status = EXCLUDED.status, salt = EXCLUDED.salt,
    bucket_version = EXCLUDED.bucket_version, allocation = EXCLUDED.allocation, targeting = EXCLUDED.targeting,
    variants = EXCLUDED.variants, namespace_name = EXCLUDED.namespace_name,
    namespace_start = EXCLUDED.namespace_start, namespace_end = EXCLUDED.namespace_end, sticky = EXCLUDED.sticky
"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def flag(key: str, **fields: Any) -> dict[str, Any]:
    """A flag definition as the config document carries it (boolean, on for everyone, by default)."""
    values = fields.get("values", [])
    return {
        "key": key,
        "enabled": True,
        "salt": secrets.token_hex(6),
        "rollout": 100,
        "rules": [],
        "value_type": "boolean" if not values else "string",
        "default_value": False if not values else None,
        "on_value": True,
        "values": values,
        **fields,
    }


def experiment(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "status": "running",
        "salt": secrets.token_hex(6),
        "bucket_version": 1,
        "allocation": 100,
        "targeting": {"match": "all", "conditions": []},
        "namespace": None,
        "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}],
        "sticky": "local",
        **fields,
    }


async def put(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, workspace_id: str,
    flags: list[dict[str, Any]] | None = None, experiments: list[dict[str, Any]] | None = None,
) -> int:  # fmt: skip
    """Write the definitions in one transaction with a version bump, then publish. Returns the version."""
    ws = uuid.UUID(workspace_id)
    async with pool.acquire() as conn, conn.transaction():
        for f in flags or []:
            await conn.execute(
                _FLAG, ws, f["key"], f["enabled"], f["salt"], f["rollout"], _json(f["rules"]), f["value_type"],
                _json(f["default_value"]), _json(f["on_value"]), _json(f["values"]),
            )  # fmt: skip
        for e in experiments or []:
            ns = e.get("namespace") or {}
            await conn.execute(
                _EXPERIMENT, ws, e["key"], e["status"], e["salt"], e["bucket_version"], e["allocation"],
                _json(e["targeting"]), _json(e["variants"]), ns.get("name"), ns.get("start"), ns.get("end"),
                e["sticky"],
            )  # fmt: skip
        version = await flagconfig.bump(conn, ws)
    await flagconfig.publish(redis, keys, workspace_id)
    return version
