"""Upgrades in place: a database of the previous release (0001_baseline.sql), holding data, migrated by
`db.migrate`, ends with the same catalog as a fresh install from schema.sql, and keeps its data."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from eventplane import db, migrations

# What the schema is made of, each as sorted rows of text; equal catalogs mean equal schemas.
_CATALOG = {
    "relations": """
        SELECT c.relname, c.relkind::text, coalesce(pg_get_partkeydef(c.oid), ''),
               coalesce(pg_get_expr(c.relpartbound, c.oid), ''), coalesce(p.relname, '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""",
    "columns": """
        SELECT table_name, column_name,
               (rank() OVER (PARTITION BY table_name ORDER BY ordinal_position))::text,
               data_type, udt_name, coalesce(column_default, ''), is_nullable,
               coalesce(character_maximum_length::text, ''), coalesce(collation_name, ''),
               is_identity, is_generated, coalesce(generation_expression, '')
        FROM information_schema.columns WHERE table_schema = 'public'""",
    "constraints": """
        SELECT cl.relname, co.conname, co.contype::text, pg_get_constraintdef(co.oid)
        FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE n.nspname = 'public'""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')""",
    "views": """
        SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'
        UNION ALL SELECT matviewname, definition FROM pg_matviews WHERE schemaname = 'public'""",
    "triggers": """
        SELECT cl.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
        JOIN pg_class cl ON cl.oid = t.tgrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE n.nspname = 'public' AND NOT t.tgisinternal""",
    "sequences": """
        SELECT sequence_name, data_type, start_value, minimum_value, maximum_value, increment, cycle_option
        FROM information_schema.sequences WHERE sequence_schema = 'public'""",
    "types": """
        SELECT t.typname, t.typtype::text, coalesce(string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r') GROUP BY t.typname, t.typtype""",
    "extensions": "SELECT extname FROM pg_extension",
}

# One row in every table of the previous release.
_DATA = """
INSERT INTO workspaces (id, name, slug, description, plan)
    VALUES ('00000000-0000-0000-0000-00000000000a', 'Acme', 'acme', 'old', 'pro');
INSERT INTO users (id, email, name, password_hash)
    VALUES ('00000000-0000-0000-0000-00000000000b', 'Ada@Example.com', 'Ada', '$argon2id$x');
INSERT INTO workspace_members (workspace_id, user_id, role)
    VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b', 'OWNER');
INSERT INTO api_keys (workspace_id, name, key_hash, key_prefix, scopes, created_by, last_used_at)
    VALUES ('00000000-0000-0000-0000-00000000000a', 'backend', repeat('a', 64), 'ep_live_abcd',
            ARRAY['track:write'], '00000000-0000-0000-0000-00000000000b', '2026-11-30T12:00:00Z');
INSERT INTO sessions (user_id, refresh_hash, previous_hash, expires_at)
    VALUES ('00000000-0000-0000-0000-00000000000b', repeat('b', 64), repeat('c', 64), now() + interval '1 day');
INSERT INTO invitations (workspace_id, email, role, token_hash, invited_by, expires_at)
    VALUES ('00000000-0000-0000-0000-00000000000a', 'grace@example.com', 'DEVELOPER', repeat('d', 64),
            '00000000-0000-0000-0000-00000000000b', now() + interval '7 days');
INSERT INTO events (workspace_id, message_id, event_type, user_id, anonymous_id, value, properties,
                    "timestamp", received_at)
    VALUES ('00000000-0000-0000-0000-00000000000a', 'm-1', 'signup', 'u_42', NULL, 3.5, '{"plan": "pro"}',
            now() - interval '1 hour', now());
INSERT INTO event_ids (workspace_id, message_id) VALUES ('00000000-0000-0000-0000-00000000000a', 'm-1');
INSERT INTO usage_daily (workspace_id, day, event_type, events)
    VALUES ('00000000-0000-0000-0000-00000000000a', current_date, 'signup', 1);
INSERT INTO dead_letters (workspace_id, message_id, payload, reason, sqlstate)
    VALUES ('00000000-0000-0000-0000-00000000000a', 'm-2', '\\x7b7d00'::bytea, 'invalid byte sequence', '22021');
"""


async def previous_release_partitions(conn: asyncpg.Connection) -> None:
    """What db.ensure_partitions made before the ledger had partitions (0001 has no ensure_ledger_partitions)."""
    today = dt.datetime.now(dt.UTC).date()
    await conn.execute(
        "SELECT ensure_event_partitions($1, $2)",
        today - dt.timedelta(days=db.PARTITION_DAYS_BEHIND),
        today + dt.timedelta(days=db.PARTITION_DAYS_AHEAD),
    )


@contextlib.asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """A database of this test's own on the session's server, dropped afterwards."""
    name = f"eventplane_mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def catalog(dsn: str) -> dict[str, list[tuple[str, ...]]]:
    async with connected(dsn) as conn:
        return {
            part: sorted(tuple(str(v) for v in row.values()) for row in await conn.fetch(query))
            for part, query in _CATALOG.items()
        }


async def snapshot(conn: asyncpg.Connection, tables: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of `tables` (partitions through their parent), as JSON objects."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        found = await conn.fetch(f'SELECT row_to_json(t)::text AS r FROM "{table}" t')
        rows[table] = [json.loads(r["r"]) for r in found]
    return rows


async def top_level_tables(conn: asyncpg.Connection) -> list[str]:
    records = await conn.fetch(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    )
    return sorted(r["relname"] for r in records)


def in_columns(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    return sorted(json.dumps({c: r[c] for c in columns}, sort_keys=True) for r in rows)


async def recorded(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return [tuple(r.values()) for r in rows]


def files() -> list[tuple[int, str, str]]:
    return [(m.version, m.name, m.checksum) for m in migrations.discover()]


@pytest.fixture
def server_url(server_urls: tuple[str, str]) -> str:
    return server_urls[0]


async def test_previous_release_upgrades_to_a_fresh_install_and_keeps_its_data(server_url: str) -> None:
    baseline = (migrations.MIGRATIONS_DIR / "0001_baseline.sql").read_text()
    async with scratch_database(server_url) as old, scratch_database(server_url) as new:
        async with connected(old) as conn:
            await conn.execute(baseline)
            await previous_release_partitions(conn)
            await conn.execute(_DATA)
            before = await snapshot(conn, await top_level_tables(conn))
        assert all(before.values()), f"a table of the previous release holds no row: {before}"

        await db.migrate(old)
        await db.migrate(new)

        upgraded, fresh = await catalog(old), await catalog(new)
        differing = [part for part in _CATALOG if upgraded[part] != fresh[part]]
        assert not differing, f"schema.sql differs from 0001 + the migrations in {differing}"
        assert upgraded == fresh
        async with connected(old) as conn:
            after = await snapshot(conn, before)
            assert [r[:3] for r in await recorded(conn)] == files()
        for table, rows in before.items():  # a migration may drop or add columns, never lose a row
            assert len(after[table]) == len(rows), table
            columns = [c for c in rows[0] if c in after[table][0]]
            assert in_columns(after[table], columns) == in_columns(rows, columns), table
        async with connected(new) as conn:
            assert [r[:3] for r in await recorded(conn)] == files()


async def test_migrating_twice_changes_nothing(server_url: str) -> None:
    async with scratch_database(server_url) as dsn:
        await db.migrate(dsn)
        schema = await catalog(dsn)
        async with connected(dsn) as conn:
            ledger = await recorded(conn)
            assert await migrations.apply(conn) == []
        assert await db.migrate(dsn) == 0  # and no partitions to make either
        assert await catalog(dsn) == schema
        async with connected(dsn) as conn:
            assert await recorded(conn) == ledger


async def test_a_database_from_before_the_runner_records_the_baseline(server_url: str) -> None:
    async with scratch_database(server_url) as dsn, connected(dsn) as conn:
        await conn.execute((migrations.MIGRATIONS_DIR / "0001_baseline.sql").read_text())
        applied = await migrations.apply(conn)
        assert applied == [m.file_name for m in migrations.discover()[1:]]
        assert [r[:3] for r in await recorded(conn)] == files()


async def test_an_applied_migration_that_changed_is_refused(server_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, directory)
    async with scratch_database(server_url) as dsn:
        await db.migrate(dsn, directory)
        baseline = directory / "0001_baseline.sql"
        baseline.write_text(baseline.read_text() + "\nALTER TABLE workspaces ADD COLUMN sneaky int;\n")
        with pytest.raises(migrations.MigrationError, match=r"0001_baseline\.sql changed after it was applied"):
            await db.migrate(dsn, directory)
        async with connected(dsn) as conn:
            assert (
                await conn.fetchval("SELECT count(*) FROM information_schema.columns WHERE column_name = 'sneaky'") == 0
            )


async def test_a_migration_this_release_lacks_is_refused(server_url: str) -> None:
    async with scratch_database(server_url) as dsn:
        await db.migrate(dsn)
        async with connected(dsn) as conn:
            await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')")
        with pytest.raises(migrations.MigrationError, match=r"9999_future\.sql applied, which this release lacks"):
            await db.migrate(dsn)


async def test_concurrent_migrations_install_once(server_url: str) -> None:
    async with scratch_database(server_url) as dsn:
        await asyncio.gather(*(db.migrate(dsn) for _ in range(3)))
        async with connected(dsn) as conn:
            assert [r[:3] for r in await recorded(conn)] == files()
            today = dt.datetime.now(dt.UTC).date()
            assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"events_p{today:%Y%m%d}")


def test_misnamed_migration_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0002_Add Thing.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match=r"named NNNN_short_name\.sql"):
        migrations.discover(tmp_path)
    (tmp_path / "0002_Add Thing.sql").unlink()
    (tmp_path / "0003_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_b.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match=r"also 0003_a\.sql"):
        migrations.discover(tmp_path)


async def test_every_workspace_becomes_an_org_of_its_own_with_its_owners_and_plan(server_url: str) -> None:
    baseline = (migrations.MIGRATIONS_DIR / "0001_baseline.sql").read_text()
    async with scratch_database(server_url) as dsn:
        async with connected(dsn) as conn:
            await conn.execute(baseline)
            await previous_release_partitions(conn)
            await conn.execute(_DATA)
        await db.migrate(dsn)
        async with connected(dsn) as conn:
            row = await conn.fetchrow(
                "SELECT o.name, o.plan, w.public_key, w.secret_hash, "
                "(SELECT count(*) FROM workspaces x WHERE x.org_id = o.id) AS workspaces "
                "FROM workspaces w JOIN orgs o ON o.id = w.org_id WHERE w.slug = 'acme'"
            )
            members = await conn.fetch("SELECT user_id::text, role FROM org_members")
            invitation = await conn.fetchrow("SELECT workspace_id::text, org_id FROM invitations")
    assert row is not None and invitation is not None
    assert (row["name"], row["plan"], row["workspaces"], row["secret_hash"]) == ("Acme", "pro", 1, None)
    assert row["public_key"].startswith("epw_")
    assert [tuple(m.values()) for m in members] == [("00000000-0000-0000-0000-00000000000b", "OWNER")]
    assert (invitation["workspace_id"], invitation["org_id"]) == ("00000000-0000-0000-0000-00000000000a", None)


async def test_the_ledger_keeps_the_windows_ids_under_the_day_their_event_was_received(server_url: str) -> None:
    """0120 converts the ledger in place: ids whose event was received in the last 7 days stay, under that
    day; older ones, and ids whose event is gone, leave it."""
    baseline = (migrations.MIGRATIONS_DIR / "0001_baseline.sql").read_text()
    today = dt.datetime.now(dt.UTC).date()
    ws = uuid.UUID("00000000-0000-0000-0000-00000000000a")
    async with scratch_database(server_url) as dsn:
        async with connected(dsn) as conn:
            await conn.execute(baseline)
            await previous_release_partitions(conn)
            for age in (3, 30):
                day = today - dt.timedelta(days=age)
                await conn.execute("SELECT ensure_event_partitions($1, $1)", day)
            await conn.execute("INSERT INTO workspaces (id, name, slug) VALUES ($1, 'Acme', 'acme')", ws)
            for message_id, age in (("m0", 0), ("m3", 3), ("m30", 30)):
                await conn.execute(
                    'INSERT INTO events (workspace_id, message_id, event_type, "timestamp", received_at) '
                    "VALUES ($1, $2, 'e', now(), now() - make_interval(days => $3))",
                    ws,
                    message_id,
                    age,
                )
            await conn.execute("INSERT INTO event_ids SELECT $1, m FROM unnest(ARRAY['m0', 'm3', 'm30', 'gone']) m", ws)
        await db.migrate(dsn)
        async with connected(dsn) as conn:
            kept = await conn.fetch("SELECT message_id, day FROM event_ids ORDER BY message_id")
            assert [tuple(r.values()) for r in kept] == [("m0", today), ("m3", today - dt.timedelta(days=3))]
            three_days_ago = f"event_ids_p{today - dt.timedelta(days=3):%Y%m%d}"
            assert await conn.fetchval("SELECT count(*) FROM " + three_days_ago) == 1
            assert await conn.fetchval("SELECT to_regclass('event_ids_forever')") is None
