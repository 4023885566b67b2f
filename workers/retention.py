"""Data retention: events older than a workspace's `retention_days` setting are deleted, in bounded
chunks, by a worker job once a minute (eventplane/workspace_config.py validates the setting). Usage
counts and the exactly-once ledger are kept, so an old message id sent again is still a duplicate."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from eventplane.errors import TRANSIENT_ERRORS

log = logging.getLogger("eventplane.workers.retention")
CHUNK = 10_000  # rows per statement: each delete stays short, so it never holds the worker's connection long
MAX_CHUNKS = 20  # per run; the rest waits for the next minute

_DELETE = """
WITH expired AS (
    SELECT e.tableoid, e.ctid FROM events e
    JOIN workspace_settings s ON s.workspace_id = e.workspace_id
    WHERE s.settings ->> 'retention_days' IS NOT NULL
      AND e.received_at < now() - make_interval(days => (s.settings ->> 'retention_days')::int)
    LIMIT $1
)
DELETE FROM events e USING expired x WHERE e.tableoid = x.tableoid AND e.ctid = x.ctid
"""


async def expire(pool: asyncpg.Pool) -> int:
    """Delete expired events; returns how many."""
    deleted = 0
    for _ in range(MAX_CHUNKS):
        status = await pool.execute(_DELETE, CHUNK)
        count = int(status.split()[-1])
        deleted += count
        if count < CHUNK:
            break
    return deleted


async def run(ctx: dict[str, Any]) -> int:
    """The arq cron job."""
    try:
        deleted = await expire(ctx["state"].pool)
    except TRANSIENT_ERRORS as exc:
        log.warning("retention skipped this minute: %s", type(exc).__name__)
        return 0
    if deleted:
        log.info("retention: %d expired events deleted", deleted)
    return deleted
