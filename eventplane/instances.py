"""Instances: the Postgres + Redis pairs (and their workers) that hold workspaces' event data.

The hub (DATABASE_URL, REDIS_URL) keeps management data: orgs, users, workspaces, keys, flags, and the
registry below. An instance keeps the event data of the workspaces placed on it: `events`, the
`event_ids` ledger, `usage_daily` and `dead_letters` in its Postgres; its queue, queue depth and rate
buckets in its Redis. `workspaces.instance` NULL means the hub's own servers, the default instance
(named "default" on the command line), so with none registered nothing changes.

Placement: a new workspace goes to the active registered instance with the fewest workspaces (ties by
name), or to the default instance when none is registered; an operator may name one instead. Counting
workspaces, not stored events, is a choice: it is one indexed query, and a heavy tenant is better
handled by moving it (eventplane/moves.py) than by a placement rule.

Instance URLs carry credentials: they are stored in the hub (the processes need them) and shown only
redacted (`redact`); `Instance`'s repr leaves them out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from eventplane import db
from eventplane.errors import ApiError
from eventplane.redis_client import connect_redis
from eventplane.settings import Settings

DEFAULT = "default"  # the hub's own servers: workspaces.instance IS NULL
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class Instance:
    name: str
    database_url: str = field(repr=False)
    redis_url: str = field(repr=False)
    state: str = "active"


class PlacementError(ApiError):
    """An instance that cannot take the workspace: unknown, or draining."""


def column(name: str | None) -> str | None:
    """The value of `workspaces.instance` for an instance name (None for the default instance)."""
    return None if name in (None, "", DEFAULT) else name


def label(value: str | None) -> str:
    """An instance's name as people read it (`default` for the hub's servers)."""
    return value or DEFAULT


_SECRET_PARAMS = frozenset({"password", "passwd", "pass", "sslpassword"})


def redact(url: str) -> str:
    """The URL with its password replaced by ***, for listings and logs: in the userinfo and in a
    `password` query parameter (asyncpg and redis-py take either)."""
    parts = urlsplit(url)
    if parts.query:
        query = [
            (k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*"))
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    return urlunsplit(parts)


def of_hub(settings: Settings) -> Instance:
    """The default instance: the hub's own servers."""
    return Instance(DEFAULT, settings.dsn, settings.redis_dsn)


async def registry(conn: db.Conn | asyncpg.Pool) -> dict[str, Instance]:
    """Every registered instance by name (the default instance is not in it)."""
    rows = await conn.fetch("SELECT name, database_url, redis_url, state FROM instances ORDER BY name")
    return {r["name"]: Instance(r["name"], r["database_url"], r["redis_url"], r["state"]) for r in rows}


async def get(conn: db.Conn | asyncpg.Pool, settings: Settings, name: str) -> Instance | None:
    """An instance by name; `default` is the hub's own servers."""
    if name in ("", DEFAULT):
        return of_hub(settings)
    return (await registry(conn)).get(name)


def settings_for(settings: Settings, instance: Instance) -> Settings:
    """Settings whose servers are the instance's (for a worker serving it); `instance` names it."""
    return replace(settings.with_urls(instance.database_url, instance.redis_url), instance=column(instance.name) or "")


async def add(conn: db.Conn | asyncpg.Pool, name: str, database_url: str, redis_url: str) -> Instance:
    """Register an instance after checking both servers answer, and bring its database to the current
    schema (the whole schema: the hub tables stay empty there). Raises ValueError on a bad name."""
    if not NAME.fullmatch(name) or name == DEFAULT:
        raise ValueError("an instance name is 1-40 characters of a-z, 0-9 and '-', and not 'default'")
    await db.migrate(database_url)
    redis = connect_redis(redis_url)
    try:
        await redis.ping()
    finally:
        await redis.aclose()
    await conn.execute("INSERT INTO instances (name, database_url, redis_url) VALUES ($1, $2, $3)",
                       name, database_url, redis_url)  # fmt: skip
    return Instance(name, database_url, redis_url)


async def set_state(conn: db.Conn | asyncpg.Pool, name: str, state: str) -> bool:
    """`draining`: no new placements (its workspaces stay until moved); `active` again. False: unknown."""
    done = await conn.execute("UPDATE instances SET state = $2 WHERE name = $1", name, state)
    return done != "UPDATE 0"


async def load(conn: db.Conn | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every instance, the default one first, with its workspace count (the placement's measure)."""
    rows = await conn.fetch(
        "SELECT i.name, i.database_url, i.redis_url, i.state, i.created_at, count(w.id) AS workspaces "
        "FROM instances i LEFT JOIN workspaces w ON w.instance = i.name GROUP BY i.name ORDER BY i.name"
    )
    default = await conn.fetchval("SELECT count(*) FROM workspaces WHERE instance IS NULL")
    out: list[dict[str, Any]] = [{"name": DEFAULT, "state": "active", "workspaces": default, "hub": True}]
    for r in rows:
        out.append({"name": r["name"], "state": r["state"], "workspaces": r["workspaces"],
                    "database_url": redact(r["database_url"]), "redis_url": redact(r["redis_url"]),
                    "created_at": r["created_at"]})  # fmt: skip
    return out


async def place(conn: db.Conn | asyncpg.Pool, requested: str | None = None) -> str | None:
    """The `workspaces.instance` value for a new workspace: the requested instance (which must exist and
    be active), else the least loaded active one, else None (the default instance)."""
    if requested is not None:
        if requested == DEFAULT:
            return None
        state = await conn.fetchval("SELECT state FROM instances WHERE name = $1", requested)
        if state is None:
            raise PlacementError(400, "INSTANCE_UNKNOWN", f"No instance is named '{requested}'",
                                 {"field": "instance"})  # fmt: skip
        if state != "active":
            raise PlacementError(409, "INSTANCE_DRAINING", f"Instance '{requested}' is draining: it takes no "
                                 "new workspaces", {"instance": requested})  # fmt: skip
        return requested
    chosen: str | None = await conn.fetchval(
        "SELECT i.name FROM instances i LEFT JOIN workspaces w ON w.instance = i.name WHERE i.state = 'active' "
        "GROUP BY i.name ORDER BY count(w.id), i.name LIMIT 1"
    )
    return chosen
