"""Events already stored: `count` events and their exactly-once ledger rows, made inside Postgres.

For the bench's "cost as data grows" row: the pipeline is measured again on top of this. Rows are built
by `generate_series` in Postgres (nothing crosses the wire), spread over the seven days before now (so
over eight daily partitions, today's included) and over the bench's workspaces, with small properties
(the indexes, not the payload, are what new writes pay for). Ledger ids are 32 characters, about a
uuid's length, in ascending order per workspace, so that the ledger's B-tree is built by appends.
`python -m loadtests.preload COUNT` (DATABASE_URL set) prints `{"events": N, "seconds": S}`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import asyncpg
import orjson

CHUNK = 1_000_000  # rows per statement (and transaction): bounded memory, progress visible
SPAN_SECONDS = 7 * 86_400

_LEDGER = """
INSERT INTO event_ids (workspace_id, message_id, day)
SELECT $1::uuid, lpad(g::text, 32, '0'), (t AT TIME ZONE 'UTC')::date
FROM generate_series($2::bigint, $3::bigint) g,
     LATERAL (SELECT now() - make_interval(secs => 60 + $4::float8 * ($5::bigint - g) / $5)) AS x(t)
"""
_EVENTS = """
INSERT INTO events (workspace_id, message_id, event_type, user_id, anonymous_id, value, properties,
                    "timestamp", received_at, context)
SELECT $1::uuid, lpad(g::text, 32, '0'),
       (ARRAY['page_viewed','button_clicked','signed_up','checkout_started','order_completed','search'])[1 + g % 6],
       CASE WHEN g % 10 < 7 THEN 'user_' || (g * 7919 % 100000) END,
       'anon-' || to_hex(g * 7919 % 100000),
       NULL, jsonb_build_object('path', '/pricing', 'n', g % 1000), t, t, NULL
FROM generate_series($2::bigint, $3::bigint) g,
     LATERAL (SELECT now() - make_interval(secs => 60 + $4::float8 * ($5::bigint - g) / $5)) AS x(t)
"""


async def preload(dsn: str, count: int) -> float:
    """Store `count` events (and their ledger rows) spread over the workspaces; returns the seconds taken."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.fetchval("SELECT ensure_event_partitions(current_date - 8, current_date + 7)")
        await conn.fetchval("SELECT ensure_ledger_partitions(current_date - 8, current_date + 7)")
        workspaces = [r["id"] for r in await conn.fetch("SELECT id FROM workspaces ORDER BY id")]
        each = max(1, count // len(workspaces))
        for ws in workspaces:
            for first in range(1, each + 1, CHUNK):
                last = min(each, first + CHUNK - 1)
                await conn.execute(_LEDGER, ws, first, last, float(SPAN_SECONDS), each)  # claimed the day each arrived
                # this workspace's events spread over the whole span, oldest first
                await conn.execute(_EVENTS, ws, first, last, float(SPAN_SECONDS), each)
        await conn.execute("ANALYZE events")
        await conn.execute("ANALYZE event_ids")
    finally:
        await conn.close()
    return time.monotonic() - started


def main() -> None:
    count = int(sys.argv[1])
    seconds = asyncio.run(preload(os.environ["DATABASE_URL"], count))
    print(orjson.dumps({"events": count, "seconds": seconds}).decode())


if __name__ == "__main__":
    main()
