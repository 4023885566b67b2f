"""Deletion on request: every stored event of one person (a workspace's user_id or anonymous_id) deleted.

A request (api/deletions.py) is a row of `deletions`; its `created_at` is the cut-off. The worker job
`run`, every 5 s, takes the oldest unfinished request that is at least SETTLE_SECONDS old and deletes,
partition by partition, that person's events received before the cut-off, in batches of BATCH rows
found through the user/anonymous indexes (migrations/0090); each batch and its count in `rows_deleted`
commit together, so a worker killed mid-way loses nothing and the next run carries on (status stays
`running`). Then, the same way, the person's copies elsewhere: their rows in `dead_letters` (refused
rows, received before the cut-off; `dead_letters_deleted`) and their queued payloads in `webhook_outbox`
(not yet delivered; `webhook_rows_deleted`), each through an index of migrations/0160.
pending -> running -> done.

Events still queued when the request is made: the committer (workers/store.py) takes out of every
batch, before claiming it, the rows of a person with a request whose cut-off is after their receipt,
and, for a request with `suppress`, every later row of that person too (a request without it is checked
for QUEUED_DAYS, as long as an event can stay queued). They are counted in the
request's `events_refused` and the worker metric `eventplane_worker_events_refused_total`: never a
silent drop. The cut-off comes from the api's clock, receipts from the edge's: hosts are assumed to
agree within a second.

Why SETTLE_SECONDS: a commit that began before the request could not see it and may still store that
person's rows. Each statement of a commit ends within the pools' 30 s command timeout and a commit runs
five (COPY, refusal, day guard, lookup, store), so once a request is three minutes old every commit that
could miss it has ended, and what it stored is there to be deleted.
Usage counts are not rewritten.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg

from eventplane import db
from eventplane.errors import TRANSIENT_ERRORS
from workers import partitions

log = logging.getLogger("eventplane.workers.deletions")
BATCH = 5_000  # rows per transaction
MAX_BATCHES = 40  # per run (at most 200,000 rows); the rest waits for the next run
SETTLE_SECONDS = 180.0
EVERY_SECONDS = set(range(0, 60, 5))
# A request without `suppress` stops being checked at commit this long after it was made: no queued event
# is older (arq keeps a job 7 days; workers/jobs.py retries one for about 5).
QUEUED_DAYS = 8

# Staged rows (workers/store.py) of a person with a request: received before its cut-off, or suppressed.
_REFUSE = """
WITH hit AS (
    SELECT DISTINCT ON (s.ctid) s.ctid AS row_id, d.id
    FROM ep_stage s JOIN deletions d ON d.workspace_id = s.workspace_id
         AND (d.user_id = s.user_id OR d.anonymous_id = s.anonymous_id)
    WHERE d.suppress OR (s.received_us < (extract(epoch FROM d.created_at) * 1000000)::bigint
                         AND d.created_at > now() - make_interval(days => $1))
    ORDER BY s.ctid, d.id
), gone AS (
    DELETE FROM ep_stage s USING hit WHERE s.ctid = hit.row_id RETURNING hit.id
), counted AS (
    UPDATE deletions d SET events_refused = d.events_refused + g.n
    FROM (SELECT id, count(*) AS n FROM gone GROUP BY id) g WHERE d.id = g.id
    RETURNING g.n
)
SELECT coalesce(sum(n), 0)::bigint FROM counted
"""

_TAKE = """
UPDATE deletions SET status = 'running', started_at = coalesce(started_at, $1::timestamptz)
WHERE id = (
    SELECT id FROM deletions WHERE status <> 'done' AND created_at <= $1::timestamptz - make_interval(secs => $2)
    ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id, workspace_id, user_id, anonymous_id, created_at
"""


async def refuse_staged(conn: db.Conn) -> int:
    """Inside a commit, before its claims: remove the staged rows that a deletion request refuses."""
    refused: int = await conn.fetchval(_REFUSE, QUEUED_DAYS)
    return refused


def _delete_sql(partition: str, column: str) -> str:
    """One bounded batch of one person's events in one partition (`column`: user_id or anonymous_id).
    The ctids come from the person's index; deleting by ctid is a TID scan of just those rows."""
    assert column in ("user_id", "anonymous_id")
    return (
        f'DELETE FROM "{partition}" WHERE ctid = ANY (ARRAY('
        f'SELECT ctid FROM "{partition}" WHERE workspace_id = $1 AND {column} = $2 AND received_at < $3 LIMIT $4))'
    )


def _dead_letters_sql(column: str) -> str:
    """One bounded batch of the person's refused rows (dead_letters' workspace_id is text), through
    dead_letters_user / _anonymous (migrations/0160); a row without a receipt is theirs whenever it came."""
    assert column in ("user_id", "anonymous_id")
    return (
        "DELETE FROM dead_letters WHERE id = ANY (ARRAY("
        f"SELECT id FROM dead_letters WHERE workspace_id = $1::uuid::text AND {column} = $2 "
        "AND (received_at IS NULL OR received_at < $3) LIMIT $4))"
    )


def _outbox_sql(column: str) -> str:
    """One bounded batch of the person's queued webhook payloads, per destination of the workspace through
    webhook_outbox_user / _anonymous (migrations/0160): the copies of the events deleted above."""
    assert column in ("user_id", "anonymous_id")
    return (
        "DELETE FROM webhook_outbox WHERE id = ANY (ARRAY("
        "SELECT o.id FROM webhook_destinations d JOIN webhook_outbox o ON o.destination_id = d.id "
        f"AND o.payload ->> '{column}' = $2 WHERE d.workspace_id = $1 AND o.received_at < $3 LIMIT $4))"
    )


async def process(
    pool: asyncpg.Pool, now: dt.datetime | None = None, max_batches: int = MAX_BATCHES, batch: int = BATCH
) -> int:
    """Work on the oldest due request (SETTLE_SECONDS old at `now`, default the current time) for at most
    `max_batches` batches of `batch` rows: the person's events, partition by partition, then their dead
    letters, then their queued webhook payloads. Returns the rows deleted; a request whose person has no
    rows left in any of them is done."""
    now = now or dt.datetime.now(dt.UTC)
    request = await pool.fetchrow(_TAKE, now, SETTLE_SECONDS)
    if request is None:
        return 0
    column = "user_id" if request["user_id"] is not None else "anonymous_id"
    person = request[column]
    deleted = batches = 0
    async with pool.acquire() as conn:
        steps = [
            (_delete_sql(part.name, column), "rows_deleted")
            for part in await partitions.events_partitions(conn, before=request["created_at"])
        ]
        steps += [(_dead_letters_sql(column), "dead_letters_deleted"), (_outbox_sql(column), "webhook_rows_deleted")]
        for sql, counter in steps:
            while True:
                if batches >= max_batches:
                    return deleted  # still running: the next run carries on
                count = await _batch(conn, request["id"], counter, sql, request["workspace_id"], person,
                                     request["created_at"], batch)  # fmt: skip
                deleted += count
                batches += count > 0  # a partition without that person's rows costs one index probe
                if count < batch:
                    break
        await conn.execute("UPDATE deletions SET status = 'done', finished_at = $2 WHERE id = $1", request["id"], now)
    log.info("deletion %s done", request["id"])
    return deleted


_COUNTERS = ("rows_deleted", "dead_letters_deleted", "webhook_rows_deleted")


async def _batch(conn: db.Conn, request_id: uuid.UUID, counter: str, sql: str, *args: Any) -> int:
    assert counter in _COUNTERS
    async with conn.transaction():
        count = int((await conn.execute(sql, *args)).split()[-1])
        if count:
            await conn.execute(f"UPDATE deletions SET {counter} = {counter} + $2 WHERE id = $1", request_id, count)
    return count


async def run(ctx: dict[str, Any]) -> int:
    """The arq cron job."""
    try:
        return await process(ctx["state"].pool)
    except TRANSIENT_ERRORS as exc:
        log.warning("deletions skipped this run: %s", type(exc).__name__)
        return 0
