"""Workspace and API-key records: the operations the CLI and the management API share."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import asyncpg
from redis.asyncio import Redis

from eventplane import apikeys, db, instances, keyformat, scopes
from eventplane.redis_names import RedisNames

WORKSPACE_COLUMNS = "id::text, name, slug, description, plan, is_active, created_at, updated_at"
PUBLIC_KEY_PREFIX = "epw_"  # a workspace's public identifier; not a credential
KEY_COLUMNS = (
    "id::text, workspace_id::text, name, description, key_prefix, scopes, is_active, created_at, last_used_at, "
    "expires_at"
)


async def create_workspace(
    conn: db.Conn | asyncpg.Pool,
    *,
    name: str,
    slug: str,
    description: str | None = None,
    plan: str = "free",
    org_id: object = None,
    secret_hash: str | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """Insert a workspace, in `org_id` or else in a new org of its own (named after it, with its plan), on
    `instance` or else the least loaded one (eventplane/instances.py; PlacementError when it cannot be).
    Raises asyncpg.UniqueViolationError when the slug is taken."""
    placed = await instances.place(conn, instance)
    if org_id is None:
        org_id = await conn.fetchval("INSERT INTO orgs (name, plan) VALUES ($1, $2) RETURNING id", name, plan)
    row = await conn.fetchrow(
        "INSERT INTO workspaces (name, slug, description, plan, org_id, public_key, secret_hash, instance) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {WORKSPACE_COLUMNS}, org_id::text, instance",
        name,
        slug,
        description,
        plan,
        org_id,
        PUBLIC_KEY_PREFIX + secrets.token_hex(16),
        secret_hash,
        placed,
    )
    assert row is not None
    return dict(row)


async def workspace_by_slug(conn: db.Conn | asyncpg.Pool, slug: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE slug = $1", slug)
    return None if row is None else dict(row)


async def key_hashes(conn: db.Conn | asyncpg.Pool, workspace_id: object) -> list[str]:
    rows = await conn.fetch("SELECT key_hash FROM api_keys WHERE workspace_id = $1", workspace_id)
    return [r["key_hash"] for r in rows]


async def set_plan(pool: asyncpg.Pool | db.Conn, redis: Redis, redis_keys: RedisNames, slug: str,
                   plan: str) -> dict[str, Any] | None:  # fmt: skip
    """The operator's plan change: the plan of the workspace's org, so of every workspace in it; pushes their
    keys to every edge (None: no such slug)."""
    org_id = await pool.fetchval(
        "UPDATE orgs SET plan = $2, updated_at = now() WHERE id = (SELECT org_id FROM workspaces WHERE slug = $1) "
        "RETURNING id",
        slug,
        plan,
    )
    if org_id is None:
        return None
    await pool.execute("UPDATE workspaces SET plan = $2, updated_at = now() WHERE org_id = $1", org_id, plan)
    row = await pool.fetchrow(f"SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE slug = $1", slug)
    hashes = await pool.fetch(
        "SELECT key_hash FROM api_keys WHERE workspace_id IN (SELECT id FROM workspaces WHERE org_id = $1)", org_id
    )
    await apikeys.refresh(pool, redis, redis_keys, [h["key_hash"] for h in hashes])
    return None if row is None else dict(row)


async def create_api_key(
    conn: db.Conn | asyncpg.Pool,
    *,
    workspace_id: str,
    name: str,
    scope_names: list[str],
    expires_at: dt.datetime | None = None,
    created_by: str | None = None,
    description: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Insert a key; returns its record and the plaintext, which exists only in this return value."""
    granted = scopes.validate(scope_names)
    plaintext = keyformat.generate()
    row = await conn.fetchrow(
        f"INSERT INTO api_keys (workspace_id, name, key_hash, key_prefix, scopes, expires_at, created_by, description) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KEY_COLUMNS}",
        workspace_id,
        name,
        keyformat.hash_key(plaintext),
        keyformat.display_prefix(plaintext),
        granted,
        expires_at,
        created_by,
        description,
    )
    assert row is not None
    return dict(row), plaintext


async def revoke_api_key(pool: asyncpg.Pool | db.Conn, redis: Redis, redis_keys: RedisNames, key_id: str) -> bool:
    """Revoke a key and push the change to every edge. False when there is no such key."""
    key_hash = await pool.fetchval(
        "UPDATE api_keys SET is_active = false, revoked_at = coalesce(revoked_at, now()) "
        "WHERE id = $1 RETURNING key_hash",
        key_id,
    )
    if key_hash is None:
        return False
    await apikeys.refresh(pool, redis, redis_keys, [key_hash])
    return True
