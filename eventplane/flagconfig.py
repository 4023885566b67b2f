"""A workspace's flag and experiment definitions as one document: what `GET /api/v1/sdk/config` serves
and what each edge caches (the contract: /work/wt/tasks/flags-contract.md section 5).

`version` counts changes per workspace: every change calls `bump` in its own transaction, so a document
and its version always agree; after the commit the writer calls `publish`, and edges drop their copy.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis

from eventplane.db import Conn
from eventplane.redis_names import RedisNames


@dataclass(frozen=True)
class Config:
    workspace_id: str
    version: int
    body: bytes  # the JSON document

    @property
    def etag(self) -> str:
        return f'"{self.workspace_id}:{self.version}"'


_FLAGS = """
SELECT key, enabled, salt, rollout::float8 AS rollout, rules::text AS rules, value_type,
       default_value::text AS default_value, on_value::text AS on_value, variations::text AS variations
FROM feature_flags WHERE workspace_id = $1 ORDER BY key
"""
_EXPERIMENTS = """
SELECT key, status, salt, bucket_version, allocation::float8 AS allocation, targeting::text AS targeting,
       namespace_name, namespace_start, namespace_end, variants::text AS variants, sticky
FROM experiments WHERE workspace_id = $1 ORDER BY key
"""
_VERSION = "SELECT version FROM flag_config_versions WHERE workspace_id = $1"
_BUMP = """
INSERT INTO flag_config_versions (workspace_id, version) VALUES ($1, 1)
ON CONFLICT (workspace_id) DO UPDATE SET version = flag_config_versions.version + 1
RETURNING version
"""
_encoder = msgspec.json.Encoder()


def _flag(r: Any) -> dict[str, Any]:
    return {
        "key": r["key"],
        "enabled": r["enabled"],
        "salt": r["salt"],
        "rollout": r["rollout"],
        "rules": msgspec.Raw(r["rules"].encode()),
        "value_type": r["value_type"],
        "default_value": msgspec.Raw(r["default_value"].encode()),
        "on_value": msgspec.Raw(r["on_value"].encode()),
        "values": _variations(r["variations"]),
    }


def _variations(raw: str) -> list[dict[str, Any]]:
    # Stored as [{key, value, weight}]; weights as numbers whatever jsonb kept them as.
    return [{"key": v["key"], "value": v["value"], "weight": float(v["weight"])} for v in msgspec.json.decode(raw)]


def _experiment(r: Any) -> dict[str, Any]:
    namespace = None
    if r["namespace_name"] is not None:
        namespace = {"name": r["namespace_name"], "start": r["namespace_start"], "end": r["namespace_end"]}
    variants = [{"key": v["key"], "weight": float(v["weight"])} for v in msgspec.json.decode(r["variants"])]
    return {
        "key": r["key"],
        "status": r["status"],
        "salt": r["salt"],
        "bucket_version": r["bucket_version"],
        "allocation": r["allocation"],
        "targeting": msgspec.Raw(r["targeting"].encode()),
        "namespace": namespace,
        "variants": variants,
        "sticky": r["sticky"],
    }


async def _read(conn: Conn, workspace_id: uuid.UUID) -> Config:
    version = await conn.fetchval(_VERSION, workspace_id) or 0
    flags = [_flag(r) for r in await conn.fetch(_FLAGS, workspace_id)]
    experiments = [_experiment(r) for r in await conn.fetch(_EXPERIMENTS, workspace_id)]
    document = {
        "workspace_id": str(workspace_id),
        "version": version,
        "generated_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "flags": flags,
        "experiments": experiments,
    }
    return Config(str(workspace_id), version, _encoder.encode(document))


async def load(conn: Conn | asyncpg.Pool, workspace_id: uuid.UUID | str) -> Config:
    """The workspace's document and its version, read from one snapshot (a workspace without flags or
    experiments has version 0 and empty lists). Takes a connection or a pool."""
    ws = workspace_id if isinstance(workspace_id, uuid.UUID) else uuid.UUID(workspace_id)
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as acquired:
            return await load(acquired, ws)
    if conn.is_in_transaction():
        return await _read(conn, ws)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _read(conn, ws)


async def bump(conn: Conn, workspace_id: uuid.UUID | str) -> int:
    """Count one change; call it inside the change's transaction. Returns the new version. It also locks
    the workspace's version row until the commit, so changes of one workspace are numbered in order."""
    version: int = await conn.fetchval(_BUMP, uuid.UUID(str(workspace_id)))
    return version


async def publish(redis: Redis, keys: RedisNames, workspace_id: uuid.UUID | str) -> None:
    """Tell every edge that the workspace's document changed (call after the commit)."""
    await redis.publish(keys.config_channel, str(workspace_id))
