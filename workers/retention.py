"""Data retention: a workspace's events received more than its `retention_days` setting ago are removed
by a worker job once a minute, so they are gone within minutes of expiring (well within the promised day).

No plan sets a default (a workspace without the setting keeps its events): a plan default would start
deleting existing workspaces' data on upgrade, which is the operator's call (docs/storage.md).

Nothing scans the whole table. `events` is partitioned by UTC day of received_at (workers/partitions.py):
1. A partition every one of whose workspaces has expired it (its end is older than each one's cut-off)
   is dropped whole, under a short lock (LOCK_TIMEOUT; a busy table waits for the next run). Which
   workspaces a partition holds is read from the (workspace_id, received_at) index, one probe per
   workspace (a loose index scan), and read again under the lock before the drop.
2. Otherwise each expired workspace's rows are deleted from each partition it has rows in, CHUNK rows
   per statement found through that index (a TID scan deletes them), at most MAX_CHUNKS per run.
Usage counts are kept. The deduplication ledger has its own window (workers/ledger.py). With instances
(eventplane/instances.py), the default instance's workers expire every instance's events, by the hub's settings.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from eventplane import db, instances
from eventplane.errors import TRANSIENT_ERRORS
from workers.partitions import Partition, events_partitions

log = logging.getLogger("eventplane.workers.retention")
CHUNK = 10_000  # rows per statement: each delete stays short, so it never holds the worker's connection long
MAX_CHUNKS = 20  # per run; the rest waits for the next minute
LOCK_TIMEOUT = "2s"  # a drop waits this long for the table; commits queue behind it meanwhile

_RETENTION = """
SELECT workspace_id, (settings ->> 'retention_days')::int AS days FROM workspace_settings
WHERE settings ->> 'retention_days' IS NOT NULL
"""


def workspaces_sql(partition: str) -> str:
    """The distinct workspaces of one partition, one index probe each (a loose index scan)."""
    return f"""
    WITH RECURSIVE w AS (
        (SELECT workspace_id FROM "{partition}" ORDER BY workspace_id LIMIT 1)
        UNION ALL
        SELECT (SELECT p.workspace_id FROM "{partition}" p WHERE p.workspace_id > w.workspace_id
                ORDER BY p.workspace_id LIMIT 1)
        FROM w WHERE w.workspace_id IS NOT NULL
    )
    SELECT workspace_id FROM w WHERE workspace_id IS NOT NULL"""


def delete_sql(partition: str) -> str:
    """One bounded batch of a workspace's rows received before a cut-off, in one partition."""
    return (
        f'DELETE FROM "{partition}" WHERE ctid = ANY (ARRAY('
        f'SELECT ctid FROM "{partition}" WHERE workspace_id = $1 AND received_at < $2 LIMIT $3))'
    )


@dataclass
class Expired:
    dropped: list[str] = field(default_factory=list)  # whole partitions
    deleted: int = 0  # rows deleted from partitions that also hold unexpired rows


async def retention_days(hub: db.Conn | asyncpg.Pool) -> dict[uuid.UUID, int]:
    """Each workspace's `retention_days`, from the hub (where settings live) for every instance."""
    return {r["workspace_id"]: r["days"] for r in await hub.fetch(_RETENTION)}


async def expire(pool: asyncpg.Pool, now: dt.datetime | None = None, max_chunks: int = MAX_CHUNKS,
                 days: dict[uuid.UUID, int] | None = None) -> Expired:  # fmt: skip
    """Remove the events in `pool` that expired by `now` (default: the current time), under the
    retention `days` of each workspace (default: read from `pool`, which is then the hub)."""
    now = now or dt.datetime.now(dt.UTC)
    days = await retention_days(pool) if days is None else days
    cutoffs = {workspace_id: now - dt.timedelta(days=n) for workspace_id, n in days.items()}
    done = Expired()
    if not cutoffs:
        return done
    async with pool.acquire() as conn:
        for part in await events_partitions(conn, before=max(cutoffs.values())):
            present = await _workspaces(conn, part)
            if _all_expired(part, present, cutoffs, now) and await _drop(conn, part, cutoffs, now):
                done.dropped.append(part.name)
                continue
            for workspace_id in sorted(w for w in present if w in cutoffs and part.start < cutoffs[w]):
                while max_chunks > 0:
                    max_chunks -= 1
                    count = int((await conn.execute(delete_sql(part.name), workspace_id, cutoffs[workspace_id],
                                                    CHUNK)).split()[-1])  # fmt: skip
                    done.deleted += count
                    if count < CHUNK:
                        break
            if max_chunks <= 0:
                break
    return done


async def _workspaces(conn: db.Conn, part: Partition) -> set[uuid.UUID]:
    return {r["workspace_id"] for r in await conn.fetch(workspaces_sql(part.name))}


def _all_expired(part: Partition, present: set[uuid.UUID], cutoffs: dict[uuid.UUID, dt.datetime],
                 now: dt.datetime) -> bool:  # fmt: skip
    if not present:  # empty: droppable once older than every retention (a late row would make it again)
        return part.end <= min(cutoffs.values())
    return all(w in cutoffs and part.end <= cutoffs[w] for w in present)


async def _drop(conn: db.Conn, part: Partition, cutoffs: dict[uuid.UUID, dt.datetime], now: dt.datetime) -> bool:
    """Drop `part` if, under a lock that keeps rows out of it, it still holds only expired workspaces."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute("LOCK TABLE ONLY events IN ACCESS EXCLUSIVE MODE")
            if not _all_expired(part, await _workspaces(conn, part), cutoffs, now):
                return False
            await conn.execute(f'DROP TABLE "{part.name}"')
    except db.LOCK_NOT_AVAILABLE:
        log.info("retention: %s busy; dropped on a later run", part.name)
        return False
    return True


async def run(ctx: dict[str, Any]) -> int:
    """The arq cron job, on the default instance's workers: the hub's events, then each registered
    instance's (a pool for the run; settings are read once, from the hub). An instance that cannot be
    reached is skipped this minute; the others are not."""
    hub = ctx["state"].pool
    try:
        days = await retention_days(hub)
        registered = list((await instances.registry(hub)).values())
    except TRANSIENT_ERRORS as exc:
        log.warning("retention skipped this minute: %s", type(exc).__name__)
        return 0
    if not days:
        return 0
    deleted = await _expire_logged("default", hub, days)
    for instance in registered:
        try:
            pool = await db.create_pool(instance.database_url, min_size=0, max_size=1)
        except TRANSIENT_ERRORS as exc:
            log.warning("retention skipped instance %s this minute: %s", instance.name, type(exc).__name__)
            continue
        try:
            deleted += await _expire_logged(instance.name, pool, days)
        finally:
            await db.close_pool(pool)
    return deleted


async def _expire_logged(name: str, pool: asyncpg.Pool, days: dict[uuid.UUID, int]) -> int:
    try:
        done = await expire(pool, days=days)
    except TRANSIENT_ERRORS as exc:
        log.warning("retention skipped instance %s this minute: %s", name, type(exc).__name__)
        return 0
    if done.dropped or done.deleted:
        log.info("retention on %s: %d partitions dropped, %d expired events deleted", name, len(done.dropped),
                 done.deleted)  # fmt: skip
    return done.deleted
