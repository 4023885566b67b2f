"""Writing a batch of queued rows to Postgres, exactly once.

One transaction per batch: binary COPY into a session-local staging table, then one statement that
claims each (workspace_id, message_id) in the `event_ids` ledger and inserts only the rows it claimed,
and bumps the usage counters for exactly those rows. Running a batch twice, or receiving an SDK's retry
in a later batch, therefore stores nothing twice.

The staging table has one column per queued row field, of types asyncpg encodes in C: bytea for the
JSON text, bigint for the edge's receipt time in microseconds (the client's timestamp and sent_at stay
timestamptz); Postgres converts them in the INSERT. Python-side codecs for jsonb and timestamptz made the COPY 2-3 times
slower.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from eventplane import db
from eventplane.queue import RECEIVED_AT

log = logging.getLogger("eventplane.workers.store")
COLUMNS = (
    "workspace_id", "message_id", "event_type", "user_id", "anonymous_id",
    "value", "properties", "timestamp", "received_at", "context",
)  # fmt: skip
ROW_FIELDS = (
    "workspace_id", "message_id", "event_type", "user_id", "anonymous_id",
    "value", "properties", "timestamp", "sent_at", "received_us", "context",
)  # fmt: skip
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ep_stage (
    workspace_id uuid, message_id text, event_type text, user_id text, anonymous_id text,
    value float8, properties bytea, "timestamp" timestamptz, sent_at timestamptz, received_us bigint,
    context bytea
) ON COMMIT DELETE ROWS
"""  # one column per queued row field (ROW_FIELDS), so rows are copied as they come off the queue
_COLS = ", ".join(f'"{c}"' for c in COLUMNS)
_ROWS = f"""
    INSERT INTO events ({_COLS})
    SELECT s.workspace_id, s.message_id, s.event_type, s.user_id, s.anonymous_id, s.value,
           convert_from(s.properties, 'UTF8')::jsonb,
           -- Segment's clock-skew correction: received_at - (sent_at - timestamp)
           CASE WHEN s."timestamp" IS NULL THEN s.received WHEN s.sent_at IS NULL THEN s."timestamp"
                ELSE s.received - (s.sent_at - s."timestamp") END,
           s.received, convert_from(s.context, 'UTF8')::jsonb
    FROM (SELECT *, 'epoch'::timestamptz + received_us * interval '1 microsecond' AS received FROM ep_stage) s
"""
# What the statements below need of each stored row; an exposure's properties only for `$exposure` events.
_RETURNING = (
    'RETURNING workspace_id, event_type, received_at, coalesce(user_id, anonymous_id) AS unit, "timestamp", '
    "CASE WHEN event_type = '$exposure' THEN properties END AS exposure"
)
# A stored `$exposure` event records the unit's assignment to the experiment at that bucket version; the
# first one wins (the earliest of a batch, and never over one already recorded). Rows are claimed in key
# order, as the ledger's are, so concurrent transactions take their locks in one order.
_ASSIGN = """
), exposures AS (
    SELECT workspace_id, unit, exposure ->> 'experiment' AS experiment, exposure ->> 'variant' AS variant,
           CASE WHEN exposure ->> 'bucket_version' ~ '^[0-9]{1,9}$' THEN (exposure ->> 'bucket_version')::int END
               AS bucket_version, "timestamp"
    FROM stored WHERE exposure IS NOT NULL AND unit IS NOT NULL
), assigned AS (
    INSERT INTO experiment_assignments (workspace_id, experiment_id, bucket_version, unit_id, variant, first_exposed_at)
    SELECT DISTINCT ON (x.id, e.bucket_version, e.unit) e.workspace_id, x.id, e.bucket_version, e.unit, e.variant,
           e."timestamp"
    FROM exposures e JOIN experiments x ON x.workspace_id = e.workspace_id AND x.key = e.experiment
    WHERE e.bucket_version IS NOT NULL AND e.variant IS NOT NULL
    ORDER BY x.id, e.bucket_version, e.unit, e."timestamp"
    ON CONFLICT DO NOTHING
    RETURNING 1"""
_COUNT = f"""{_ASSIGN}
), counted AS (
    INSERT INTO usage_daily (workspace_id, day, event_type, events)
    SELECT workspace_id, (received_at AT TIME ZONE 'UTC')::date, event_type, count(*)
    FROM stored GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (workspace_id, day, event_type) DO UPDATE SET events = usage_daily.events + excluded.events
    RETURNING 1
)
SELECT count(*) FROM stored
"""
# The common case: no id in the batch was stored before. A plain insert into the ledger (a duplicate
# fails the statement) and every staged row into events: no ON CONFLICT, no join. About half the
# ledger's cost of the general statement below, measured on 5,000-row batches. Both statements claim
# ids in key order, so two transactions with overlapping ids wait for each other instead of deadlocking.
_STORE_NEW = f"""
WITH claimed AS (
    INSERT INTO event_ids (workspace_id, message_id) SELECT workspace_id, message_id FROM ep_stage ORDER BY 1, 2
), stored AS ({_ROWS}
    {_RETURNING}
{_COUNT}"""
# After a duplicate (an SDK retry, a job run twice, one id twice in the batch): claim what is free and
# store only what was claimed, the first staged row of each id.
_STORE_DEDUP = f"""
WITH fresh AS (
    INSERT INTO event_ids (workspace_id, message_id)
    SELECT DISTINCT workspace_id, message_id FROM ep_stage ORDER BY 1, 2
    ON CONFLICT DO NOTHING
    RETURNING workspace_id, message_id
), first AS (
    SELECT DISTINCT ON (workspace_id, message_id) * FROM ep_stage ORDER BY workspace_id, message_id, ctid
), stored AS ({_ROWS.replace("FROM ep_stage) s", "FROM first) s")}
    JOIN fresh USING (workspace_id, message_id)
    {_RETURNING}
{_COUNT}"""
_DEAD_LETTER = """
INSERT INTO dead_letters (workspace_id, message_id, payload, reason, sqlstate)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, message_id) DO NOTHING
"""

# "This row can never be stored": Postgres refused its data (SQLSTATE class 22, data exception; 23,
# integrity constraint; 54, program limit such as an oversized value). Only these dead-letter a row.
# Anything else raised while storing (our own TypeError, ValueError, ...) is a bug: the job fails loudly,
# is retried, and is parked after jobs.GIVE_UP_ON_BUGS_AFTER such failures.
REJECTED: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


def _is_missing_partition(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.CheckViolationError) and "no partition" in str(exc)


def _days(rows: Sequence[Sequence[Any]]) -> set[dt.date]:
    return {dt.datetime.fromtimestamp(row[RECEIVED_AT] / 1e6, dt.UTC).date() for row in rows}


@dataclass(frozen=True)
class Outcome:
    stored: int  # new rows
    dead: int  # rows Postgres refused, now in dead_letters


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, connections: int, **pool_kwargs: Any) -> Store:
        return cls(await db.create_pool(dsn, min_size=1, max_size=connections, **pool_kwargs))

    async def close(self) -> None:
        await db.close_pool(self._pool)

    async def store(self, rows: Sequence[Sequence[Any]]) -> Outcome:
        """Store a batch in one transaction. Rows Postgres refuses go to dead_letters (then row by row)."""
        rows = [row if len(row) == len(ROW_FIELDS) else (*row, None) for row in rows]  # queued before `context`
        async with self._pool.acquire() as conn:
            try:
                return Outcome(await self._store_with_partitions(conn, rows), 0)
            except REJECTED as exc:
                log.warning("batch of %d refused (%s); storing row by row", len(rows), type(exc).__name__)
            stored = dead = 0
            for row in rows:
                try:
                    stored += await self._store_with_partitions(conn, [row])
                except REJECTED as exc:
                    await self._dead_letter(conn, row, exc)
                    dead += 1
            return Outcome(stored, dead)

    async def _store_with_partitions(self, conn: db.Conn, rows: Sequence[Sequence[Any]]) -> int:
        try:
            return await self._store(conn, rows)
        except asyncpg.CheckViolationError as exc:
            if not _is_missing_partition(exc):
                raise
        for day in _days(rows):  # a day the maintenance job has not reached yet: make it, then retry
            await db.ensure_partitions(conn, around=day)
        return await self._store(conn, rows)

    async def _store(self, conn: db.Conn, rows: Sequence[Sequence[Any]]) -> int:
        async with conn.transaction():
            await conn.execute(_STAGE)
            await conn.copy_records_to_table("ep_stage", records=rows, columns=ROW_FIELDS)
            try:
                async with conn.transaction():  # a savepoint: a duplicate undoes only this attempt
                    stored: int = await conn.fetchval(_STORE_NEW)
                    return stored
            except asyncpg.UniqueViolationError:
                pass
            stored = await conn.fetchval(_STORE_DEDUP)
            return stored

    async def _dead_letter(self, conn: db.Conn, row: Sequence[Any], exc: BaseException) -> None:
        sqlstate = getattr(exc, "sqlstate", None)
        log.warning("event refused by Postgres (%s %s); kept in dead_letters", sqlstate, type(exc).__name__)
        await conn.execute(_DEAD_LETTER, row[0], row[1], dump_row(row), f"{type(exc).__name__}: {exc}"[:2000], sqlstate)


def dump_row(row: Sequence[Any]) -> bytes:
    """A queued row as JSON (properties inlined as text), for a human reading dead_letters."""
    record = dict(zip(ROW_FIELDS, row, strict=False))
    for field in ("properties", "context"):  # JSON text; a row our own bug mangled may hold anything
        value = record.get(field)
        if isinstance(value, bytes | bytearray | memoryview):
            record[field] = bytes(value).decode("utf-8", "backslashreplace")
    return orjson.dumps(record, default=repr, option=orjson.OPT_NON_STR_KEYS)
