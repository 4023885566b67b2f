"""A deletion's batches are index-backed: on 50,000 analyzed rows, one person's rows are found through the
user / anonymous indexes of migrations/0090 and deleted by ctid, with no sequential scan.
(The request, its status and what a commit refuses: tests/api/test_deletions.py.)"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg

from eventplane import db
from workers import deletions


async def test_a_persons_batch_is_found_through_their_index(pool: asyncpg.Pool) -> None:
    day = dt.date(2019, 7, 8)
    name = f"events_p{day:%Y%m%d}"
    workspaces = [uuid.uuid4() for _ in range(20)]
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn, day)
        try:
            await conn.execute(
                f'INSERT INTO "{name}" (workspace_id, message_id, event_type, user_id, anonymous_id, "timestamp", '
                "received_at) SELECT ($1::uuid[])[1 + i % 20], 'm' || i, 'e', 'u' || (i % 2000), 'a' || (i % 3000), "
                "t, t FROM generate_series(0, 49999) i, LATERAL (SELECT $2::timestamptz + i * interval '1 s') x(t)",
                workspaces,
                dt.datetime.combine(day, dt.time(), dt.UTC),
            )
            await conn.execute(f'ANALYZE "{name}"')
            cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
            for column, person, index in (("user_id", "u7", "user_id"), ("anonymous_id", "a7", "anonymous_id")):
                sql = deletions._delete_sql(name, column)
                plan = json.dumps(json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", workspaces[7],
                                                                 person, cutoff, deletions.BATCH)))  # fmt: skip
                assert "Seq Scan" not in plan, plan
                assert f"{name}_workspace_id_{index}_timestamp_idx" in plan, plan
                assert "Tid Scan" in plan, plan
                theirs = f'SELECT count(*) FROM "{name}" WHERE workspace_id = $1 AND {column} = $2'
                before = await conn.fetchval(theirs, workspaces[7], person)
                assert before > 0
                status = await conn.execute(sql, workspaces[7], person, cutoff, deletions.BATCH)
                assert int(status.split()[-1]) == before
                assert await conn.fetchval(theirs, workspaces[7], person) == 0
        finally:
            await conn.execute(f'DROP TABLE "{name}"')
