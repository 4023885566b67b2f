from __future__ import annotations

import asyncpg

from eventplane import db
from eventplane.settings import Settings


async def test_migrate_is_idempotent_on_an_existing_database(settings: Settings, pool: asyncpg.Pool) -> None:
    before = await pool.fetchval("SELECT count(*) FROM workspaces")
    tables = await pool.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert await db.migrate(settings.dsn) == 0  # partitions for the week exist already
    assert await db.migrate(settings.dsn) == 0
    assert await pool.fetchval("SELECT count(*) FROM workspaces") >= before
    assert await pool.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == tables


async def test_partitions_cover_yesterday_to_a_week_ahead(pool: asyncpg.Pool) -> None:
    names = await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass"
    )
    days = await pool.fetch(
        "SELECT to_char(d, '\"events_p\"YYYYMMDD') AS name "
        "FROM generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7, '1 day') d"
    )
    assert {d["name"] for d in days} <= {n["relname"] for n in names}
