"""Postgres: pools, migrating (eventplane/migrations.py), and keeping event and ledger partitions ahead of time."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from eventplane import migrations

log = logging.getLogger("eventplane.db")
PARTITION_DAYS_BEHIND = 1
PARTITION_DAYS_AHEAD = 7
# A statement whose lock_timeout ran out (maintenance that yields to the hot path).
LOCK_NOT_AVAILABLE = asyncpg.LockNotAvailableError
# A connection, whether direct or borrowed from a pool.
Conn = asyncpg.Connection | PoolConnectionProxy


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    """A pool that fails fast: 5 s to connect (asyncpg's default is 60), 30 s per statement."""
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("command_timeout", 30.0)
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, **kwargs)
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool, grace: float = 10.0) -> None:
    """Close gracefully, but never hang a shutdown: asyncpg's close waits for every acquired connection,
    and one held by a cancelled request would keep it waiting forever."""
    try:
        await asyncio.wait_for(pool.close(), grace)
    except TimeoutError:
        log.warning("pool did not close in %.0f s; terminating its connections", grace)
        pool.terminate()


async def ensure_partitions(conn: Conn, around: dt.date | None = None) -> int:
    """Create the daily partitions of `events` and of the ledger `event_ids` from a day behind to a week
    ahead of `around` (default today). Returns how many were created."""
    day = around or dt.datetime.now(dt.UTC).date()
    first = day - dt.timedelta(days=PARTITION_DAYS_BEHIND)
    last = day + dt.timedelta(days=PARTITION_DAYS_AHEAD)
    events: int = await conn.fetchval("SELECT ensure_event_partitions($1, $2)", first, last)
    ledger: int = await conn.fetchval("SELECT ensure_ledger_partitions($1, $2)", first, last)
    return events + ledger


async def migrate(
    dsn: str, directory: Path = migrations.MIGRATIONS_DIR, schema_path: Path = migrations.SCHEMA_PATH
) -> int:
    """Apply the missing migrations (schema.sql on a fresh database), then make partitions ahead.
    Returns how many partitions were created."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.apply(conn, directory, schema_path)
        return await ensure_partitions(conn)
    finally:
        await conn.close()
