"""The storage ceiling: binary COPY of the rows the edge would queue, in one connection, in batches.

`python -m loadtests.copy_ceiling SECONDS` (DATABASE_URL set) prints `{"rows": N, "seconds": S}`. Rows
come from the bench's batch bodies through the edge's own transform, and go straight into `events`
(same indexes, no deduplication ledger) with two small codecs (see init_connection), one transaction per batch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
from typing import Any

import asyncpg
import orjson

from eventplane.queue import Row
from ingest.transform import Limits, parse_batch, to_rows
from loadtests import payloads
from workers.store import COLUMNS

BATCH_ROWS = 5000  # the edge's default job size (Settings.job_max_events)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Postgres counts timestamps in microseconds from 2000-01-01; these rows carry them from 1970-01-01.
PG_EPOCH_US = 946_684_800_000_000


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs for a binary COPY straight into `events`: JSON text for jsonb, integer microseconds for
    timestamptz, so that the timed loop encodes nothing in Python beyond these two lambdas."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", format="binary",
        encoder=lambda text: b"\x01" + text, decoder=lambda data: data[1:],
    )  # fmt: skip
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", format="tuple",
        encoder=lambda us: (us - PG_EPOCH_US,), decoder=lambda t: t[0] + PG_EPOCH_US,
    )  # fmt: skip


def _event_row(row: Row) -> tuple[Any, ...]:
    """A queued row as an `events` row (the worker does this in SQL): event time corrected for skew,
    times in microseconds for the worker's COPY codecs. Done before the clock starts."""
    ws, mid, kind, uid, anon, value, props, ts, sent_at, received_us, context = row
    if ts is None:
        ts_us = received_us
    elif sent_at is None:
        ts_us = (ts - EPOCH) // dt.timedelta(microseconds=1)
    else:
        ts_us = received_us - (sent_at - ts) // dt.timedelta(microseconds=1)
    return (ws, mid, kind, uid, anon, value, props, ts_us, received_us, context)


def make_batches(count: int) -> list[list[tuple[Any, ...]]]:
    limits = Limits(max_event_bytes=32 * 1024, max_batch_events=BATCH_ROWS)
    body = payloads.batch_bodies(1, size=BATCH_ROWS)[0]
    workspaces = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    received = time.time_ns() // 1000
    parsed = parse_batch(body, limits)
    return [[_event_row(r) for r in to_rows(parsed, ws, received, 2026)] for ws in workspaces]


async def run(dsn: str, seconds: float) -> dict[str, float]:
    batches = make_batches(4)
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    rows, i, start = 0, 0, time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=batches[i % len(batches)], columns=COLUMNS)
            rows += BATCH_ROWS
            i += 1
        return {"rows": rows, "seconds": time.monotonic() - start}
    finally:
        await conn.close()


def main() -> None:
    result = asyncio.run(run(os.environ["DATABASE_URL"], float(sys.argv[1])))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
