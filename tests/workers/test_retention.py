"""Retention: a workspace's events older than its retention_days are removed (whole partitions dropped
where every workspace in them has expired them, index-backed batches otherwise); others are kept."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from types import SimpleNamespace

import asyncpg

from eventplane import db, workspace_config
from eventplane.settings import Settings
from tests.conftest import make_tenant, registered_instance
from workers import retention
from workers.retention import expire


async def _insert(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, rows: list[tuple[str, str, dt.datetime]]
) -> None:
    await conn.executemany(
        "INSERT INTO events (workspace_id, message_id, event_type, user_id, timestamp, received_at) "
        "VALUES ($1, $2, 'e', 'u', $3, $3)",
        [(uuid.UUID(w), m, t) for w, m, t in rows],
    )


async def test_expired_events_are_deleted_and_others_kept(pool: asyncpg.Pool) -> None:
    keep_30, keep_all = await make_tenant(pool), await make_tenant(pool)
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn, (now - dt.timedelta(days=40)).date())
        await db.ensure_partitions(conn, (now - dt.timedelta(days=10)).date())
        await workspace_config.replace_settings(conn, keep_30.workspace_id, {"retention_days": 30})
        await _insert(conn, [(t.workspace_id, f"{t.slug}-{age}", now - dt.timedelta(days=age))
                             for t in (keep_30, keep_all) for age in (40, 10)])  # fmt: skip
    done = await expire(pool, now)
    assert done.deleted >= 1  # the 40-day-old partition holds keep_all's row too: a delete, not a drop
    left = await pool.fetch(
        "SELECT message_id FROM events WHERE workspace_id = ANY($1::uuid[]) ORDER BY message_id",
        [uuid.UUID(keep_30.workspace_id), uuid.UUID(keep_all.workspace_id)],
    )
    assert sorted(r[0] for r in left) == sorted([f"{keep_30.slug}-10", f"{keep_all.slug}-40", f"{keep_all.slug}-10"])


async def test_a_partition_every_workspace_has_expired_is_dropped_whole(pool: asyncpg.Pool) -> None:
    a, b = await make_tenant(pool), await make_tenant(pool)
    day = dt.date(2019, 3, 4)  # a day no other test stores on
    received = dt.datetime.combine(day, dt.time(12), dt.UTC)
    name = f"events_p{day:%Y%m%d}"
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn, day)
        await workspace_config.replace_settings(conn, a.workspace_id, {"retention_days": 30})
        await workspace_config.replace_settings(conn, b.workspace_id, {"retention_days": 90})
        await _insert(conn, [(a.workspace_id, "a", received), (b.workspace_id, "b", received)])
    # 60 days after the day: a's retention has passed for it, b's has not; b's row keeps the partition.
    done = await expire(pool, received + dt.timedelta(days=60))
    assert name not in done.dropped
    assert await pool.fetchval(f'SELECT array_agg(message_id) FROM "{name}"') == ["b"]
    # 100 days after: both have expired it, and it goes whole (no row-by-row delete).
    done = await expire(pool, received + dt.timedelta(days=100))
    assert name in done.dropped
    assert await pool.fetchval("SELECT to_regclass($1)", name) is None


async def test_the_per_workspace_delete_uses_the_workspace_received_index(pool: asyncpg.Pool) -> None:
    """200,000 rows of 50 workspaces in one partition, analyzed: one workspace's expired batch is found
    through (workspace_id, received_at) and deleted by ctid; no sequential scan of the partition."""
    day = dt.date(2019, 5, 6)
    name = f"events_p{day:%Y%m%d}"
    workspaces = [uuid.uuid4() for _ in range(50)]
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn, day)
        try:
            await conn.execute(
                f'INSERT INTO "{name}" (workspace_id, message_id, event_type, user_id, "timestamp", received_at) '
                "SELECT ($1::uuid[])[1 + i % 50], 'm' || i, 'e', 'u' || (i % 1000), t, t "
                "FROM generate_series(0, 199999) i, LATERAL (SELECT $2::timestamptz + i * interval '400 ms') x(t)",
                workspaces,
                dt.datetime.combine(day, dt.time(), dt.UTC),
            )
            await conn.execute(f'ANALYZE "{name}"')
            cutoff = dt.datetime.combine(day, dt.time(4), dt.UTC)  # the first hours of the day expired
            plan = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) {retention.delete_sql(name)}", workspaces[7], cutoff, retention.CHUNK
            )
            text = json.dumps(json.loads(plan))
            assert "Seq Scan" not in text, text
            assert f"{name}_workspace_id_received_at_idx" in text, text
            assert "Tid Scan" in text, text
            # And it deletes exactly that workspace's expired rows.
            expired = f'SELECT count(*) FROM "{name}" WHERE workspace_id = $1 AND received_at < $2'
            before = await conn.fetchval(expired, workspaces[7], cutoff)
            assert 0 < before < retention.CHUNK
            status = await conn.execute(retention.delete_sql(name), workspaces[7], cutoff, retention.CHUNK)
            assert int(status.split()[-1]) == before
            assert await conn.fetchval(expired, workspaces[7], cutoff) == 0
            assert await conn.fetchval(f'SELECT count(*) FROM "{name}"') == 200_000 - before
        finally:
            await conn.execute(f'DROP TABLE "{name}"')


async def test_the_default_workers_expire_every_instances_events_by_the_hubs_settings(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    tenant = await make_tenant(pool)
    now = dt.datetime.now(dt.UTC)
    async with registered_instance(settings, "rt") as instance:
        await pool.execute("UPDATE workspaces SET instance = $2 WHERE id = $1", uuid.UUID(tenant.workspace_id),
                           instance.name)  # fmt: skip
        async with pool.acquire() as conn:
            await workspace_config.replace_settings(conn, tenant.workspace_id, {"retention_days": 30})
        there = await db.create_pool(instance.database_url, min_size=0, max_size=2)
        try:
            async with there.acquire() as conn:
                for age in (40, 10):
                    await db.ensure_partitions(conn, (now - dt.timedelta(days=age)).date())
                await _insert(
                    conn, [(tenant.workspace_id, f"m-{age}", now - dt.timedelta(days=age)) for age in (40, 10)]
                )
            await retention.run({"state": SimpleNamespace(pool=pool)})
            left = await there.fetch("SELECT message_id FROM events WHERE workspace_id = $1",
                                     uuid.UUID(tenant.workspace_id))  # fmt: skip
            assert [r[0] for r in left] == ["m-10"]
        finally:
            await db.close_pool(there)
