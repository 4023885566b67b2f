"""retention_days deletes a workspace's older events, and only that workspace's."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from eventplane import db, workspace_config
from tests.conftest import make_tenant
from workers.retention import expire


async def test_events_older_than_retention_days_are_deleted(pool: asyncpg.Pool) -> None:
    keep_30, keep_all = await make_tenant(pool), await make_tenant(pool)
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn, (now - dt.timedelta(days=40)).date())
        await db.ensure_partitions(conn, (now - dt.timedelta(days=10)).date())
        await workspace_config.replace_settings(conn, keep_30.workspace_id, {"retention_days": 30})
        rows = [
            (uuid.UUID(t.workspace_id), f"{t.slug}-{age}", now - dt.timedelta(days=age))
            for t in (keep_30, keep_all)
            for age in (40, 10)
        ]
        await conn.executemany(
            "INSERT INTO events (workspace_id, message_id, event_type, user_id, timestamp, received_at) "
            "VALUES ($1, $2, 'e', 'u', $3, $3)",
            rows,
        )
    assert await expire(pool) >= 1
    left = await pool.fetch(
        "SELECT message_id FROM events WHERE workspace_id = ANY($1::uuid[]) ORDER BY message_id",
        [uuid.UUID(keep_30.workspace_id), uuid.UUID(keep_all.workspace_id)],
    )
    assert sorted(r[0] for r in left) == sorted([f"{keep_30.slug}-10", f"{keep_all.slug}-40", f"{keep_all.slug}-10"])
