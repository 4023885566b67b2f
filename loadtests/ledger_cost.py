"""What the deduplication window costs a commit: `python -m loadtests.ledger_cost` (needs DATABASE_URL).

Two scratch databases from schema.sql, each with a ledger pre-filled with PREFILL ids: `window`, the
day-partitioned ledger (ids spread over the last 7 days) written by workers/store.py; `reference`, the
previous release's unpartitioned ledger (one primary key over every id ever claimed) written by that
release's statement (a plain ledger insert and every row into events). Batches of ROWS new events
alternate between the two, so both see the same machine noise; the medians and their ratio are printed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from eventplane import db
from workers import store

PREFILL = 700_000
BATCHES = 20
ROWS = 5_000
# The previous release's statement for a batch of new ids (before migrations/0120).
_REFERENCE = f"""
WITH claimed AS (
    INSERT INTO event_ids (workspace_id, message_id) SELECT workspace_id, message_id FROM ep_stage ORDER BY 1, 2
), stored AS ({store._ROWS}
    {store._RETURNING}
{store._COUNT}"""
_OLD_LEDGER = """
DROP TABLE event_ids;
CREATE TABLE event_ids (workspace_id uuid NOT NULL, message_id text NOT NULL, PRIMARY KEY (workspace_id, message_id));
"""


async def _scratch(server: str, name: str) -> str:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    await db.migrate(dsn)
    return dsn


async def _prefill(dsn: str, workspace: uuid.UUID, *, reference: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        today = dt.datetime.now(dt.UTC).date()
        if reference:
            await conn.execute(_OLD_LEDGER)
            await conn.execute("INSERT INTO event_ids SELECT $1, 'p' || i FROM generate_series(1, $2) i", workspace,
                               PREFILL)  # fmt: skip
        else:
            for back in range(7):
                await db.ensure_partitions(conn, today - dt.timedelta(days=back))
            await conn.execute(
                "INSERT INTO event_ids SELECT $1, 'p' || i, $2::date - (i % 7) FROM generate_series(1, $3) i",
                workspace, today, PREFILL,
            )  # fmt: skip
        await conn.execute("VACUUM ANALYZE event_ids")
    finally:
        await conn.close()


def _batch(workspace: uuid.UUID) -> list[Sequence[Any]]:
    now_us = time.time_ns() // 1000
    return [
        (str(workspace), uuid.uuid4().hex, "e", "u", None, 1.0, b"{}", None, None, now_us, None) for _ in range(ROWS)
    ]


async def _reference_commit(conn: asyncpg.Connection, rows: list[Sequence[Any]]) -> None:
    async with conn.transaction():
        await conn.execute(store._STAGE)
        await conn.copy_records_to_table("ep_stage", records=rows, columns=store.ROW_FIELDS)
        await conn.fetchval(_REFERENCE)


async def main() -> None:
    server = os.environ["DATABASE_URL"]
    names = {"window": "eventplane_ledger_cost_window", "reference": "eventplane_ledger_cost_reference"}
    workspace = uuid.uuid4()
    dsns = {label: await _scratch(server, name) for label, name in names.items()}
    for label, dsn in dsns.items():
        await _prefill(dsn, workspace, reference=label == "reference")
    pool = await db.create_pool(dsns["window"], min_size=1, max_size=1)
    reference = await asyncpg.connect(dsns["reference"])
    window = store.Store(pool)
    times: dict[str, list[float]] = {"window": [], "reference": []}
    try:
        for _ in range(BATCHES):
            started = time.perf_counter()
            await window.store(_batch(workspace))
            times["window"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await _reference_commit(reference, _batch(workspace))
            times["reference"].append(time.perf_counter() - started)
    finally:
        await reference.close()
        await pool.close()
        admin = await asyncpg.connect(server)
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    medians = {label: statistics.median(t[2:]) * 1000 for label, t in times.items()}  # the first two warm up
    print(f"commit of {ROWS:,} new events, ledger pre-filled with {PREFILL:,} ids, median of {BATCHES - 2}:")
    print(f"  window (7 day partitions, workers/store.py)   {medians['window']:7.1f} ms")
    print(f"  reference (one unpartitioned ledger, 0001)     {medians['reference']:7.1f} ms")
    print(f"  ratio window / reference                       {medians['window'] / medians['reference']:7.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
