"""The event tables stay distributable by workspace_id (Citus `create_distributed_table`; docs/scaling.md):
every unique constraint or index on them includes workspace_id, none has a foreign key, and workspace_id
has one type in all of them (co-location). Citus itself is not installed here: this checks the schema
only, against the suite's Postgres."""

from __future__ import annotations

import asyncpg

DISTRIBUTED = ("events", "event_ids", "usage_daily")  # dead_letters stays local: see docs/scaling.md


async def test_unique_constraints_and_indexes_include_workspace_id(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        """
        SELECT t.relname AS tbl, i.relname AS idx,
               array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attname IS NOT NULL) AS cols
        FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey)
        WHERE x.indisunique AND t.relname = ANY ($1::text[])
        GROUP BY t.relname, i.relname
        """,
        list(DISTRIBUTED),
    )
    assert {r["tbl"] for r in rows} == {"event_ids", "usage_daily"}  # events has none (the ledger dedups)
    lacking = [(r["tbl"], r["idx"]) for r in rows if "workspace_id" not in (r["cols"] or [])]
    assert lacking == []


async def test_no_foreign_keys_and_one_workspace_id_type(pool: asyncpg.Pool) -> None:
    foreign = await pool.fetch(
        "SELECT conname, conrelid::regclass::text AS tbl FROM pg_constraint WHERE contype = 'f' "
        "AND (conrelid::regclass::text = ANY ($1::text[]) OR confrelid::regclass::text = ANY ($1::text[]))",
        list(DISTRIBUTED),
    )
    assert [dict(r) for r in foreign] == []
    types = await pool.fetch(
        "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'public' "
        "AND column_name = 'workspace_id' AND table_name = ANY ($1::text[])",
        list(DISTRIBUTED),
    )
    assert [r[0] for r in types] == ["uuid"]
