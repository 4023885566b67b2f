"""Writing a batch of queued rows to Postgres, exactly once.

One transaction per batch: binary COPY into a session-local staging table; the rows of people whose
deletion was requested are taken out (workers/deletions.py: queued before the request, or suppressed);
then one statement claims each (workspace_id, message_id) in the `event_ids` ledger, inserts only the
rows it claimed, and bumps the usage counters for exactly those rows. Running a batch twice, or
receiving an SDK's retry in a later batch, therefore stores nothing twice within the deduplication
window (workers/ledger.py states the window's guarantee exactly).

The staging table has one column per queued row field, of types asyncpg encodes in C: bytea for the
JSON text, bigint for the edge's receipt time in microseconds (the client's timestamp and sent_at stay
timestamptz); Postgres converts them in the INSERT. Python-side codecs for jsonb and timestamptz made the COPY 2-3 times
slower.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from eventplane import db
from eventplane.queue import RECEIVED_AT
from workers import deletions, ledger

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
# A stored `$exposure` event records the unit's assignment to the experiment at that bucket version (its id
# from `experiment_keys`, on every instance: the hub's `experiments` are not here); the
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
    FROM exposures e JOIN experiment_keys x ON x.workspace_id = e.workspace_id AND x.key = e.experiment
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
# $1 the commit's day, $2 the window in days (workers/ledger.py): is any staged id claimed on another
# day of the window? Usually not, and the plain statement below runs.
_SEEN = f"SELECT EXISTS (SELECT 1 FROM ep_stage s WHERE EXISTS ({ledger.SEEN_ELSEWHERE}))"
# The common case: no id in the batch was stored before. A plain insert into the day's ledger partition
# (a duplicate fails the statement) and every staged row into events: no ON CONFLICT, no join. About
# half the ledger's cost of the general statement below, measured on 5,000-row batches. Both statements
# claim ids in key order, so two transactions with overlapping ids wait for each other instead of
# deadlocking.
_STORE_NEW = f"""
WITH claimed AS (
    INSERT INTO event_ids (workspace_id, message_id, day)
    SELECT workspace_id, message_id, $1::date FROM ep_stage ORDER BY 1, 2
), stored AS ({_ROWS}
    {_RETURNING}
{_COUNT}"""
# After a duplicate (an SDK retry, a job run twice, one id twice in the batch): claim what is free (not
# claimed on another day of the window, nor today) and store only what was claimed, the first staged
# row of each id.
_STORE_DEDUP = f"""
WITH fresh AS (
    INSERT INTO event_ids (workspace_id, message_id, day)
    SELECT DISTINCT s.workspace_id, s.message_id, $1::date FROM ep_stage s
    WHERE NOT EXISTS ({ledger.SEEN_ELSEWHERE})
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
    RETURNING workspace_id, message_id
), first AS (
    SELECT DISTINCT ON (workspace_id, message_id) * FROM ep_stage ORDER BY workspace_id, message_id, ctid
), stored AS ({_ROWS.replace("FROM ep_stage) s", "FROM first) s")}
    JOIN fresh USING (workspace_id, message_id)
    {_RETURNING}
{_COUNT}"""
_DEAD_LETTER = """
INSERT INTO dead_letters (workspace_id, message_id, payload, reason, sqlstate, user_id, anonymous_id, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (workspace_id, message_id) DO NOTHING
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
    refused: int = 0  # rows of people whose deletion was requested (workers/deletions.py)


class Store:
    """Writes batches through `pool`, deduplicating message ids within `window_days` (workers/ledger.py)."""

    def __init__(self, pool: asyncpg.Pool, window_days: int = ledger.DEFAULT_WINDOW_DAYS) -> None:
        self._pool = pool
        self._window = window_days

    @classmethod
    async def connect(
        cls, dsn: str, connections: int, window_days: int = ledger.DEFAULT_WINDOW_DAYS, **pool_kwargs: Any
    ) -> Store:
        return cls(await db.create_pool(dsn, min_size=1, max_size=connections, **pool_kwargs), window_days)

    async def close(self) -> None:
        await db.close_pool(self._pool)

    async def store(self, rows: Sequence[Sequence[Any]], day: dt.date | None = None) -> Outcome:
        """Store a batch in one transaction. Rows Postgres refuses go to dead_letters (then row by row).
        `day` is the commit's day for the ledger (default: today by the database's clock; tests set it)."""
        rows = [row if len(row) == len(ROW_FIELDS) else (*row, None) for row in rows]  # queued before `context`
        async with self._pool.acquire() as conn:
            try:
                return await self._store_with_partitions(conn, rows, day)
            except REJECTED as exc:
                log.warning("batch of %d refused (%s); storing row by row", len(rows), type(exc).__name__)
            stored = dead = refused = 0
            for row in rows:
                try:
                    one = await self._store_with_partitions(conn, [row], day)
                except REJECTED as exc:
                    await self._dead_letter(conn, row, exc)
                    dead += 1
                else:
                    stored, refused = stored + one.stored, refused + one.refused
            return Outcome(stored, dead, refused)

    async def _store_with_partitions(
        self, conn: db.Conn, rows: Sequence[Sequence[Any]], day: dt.date | None
    ) -> Outcome:
        try:
            return await self._store(conn, rows, day)
        except asyncpg.CheckViolationError as exc:
            if not _is_missing_partition(exc):
                raise
        # A day the maintenance job has not reached yet: make it (and the ledger's day), then retry.
        for received in _days(rows) | {day or dt.datetime.now(dt.UTC).date()}:
            await db.ensure_partitions(conn, around=received)
        return await self._store(conn, rows, day)

    async def _store(self, conn: db.Conn, rows: Sequence[Sequence[Any]], day: dt.date | None) -> Outcome:
        async with conn.transaction():
            await conn.execute(_STAGE)
            await conn.copy_records_to_table("ep_stage", records=rows, columns=ROW_FIELDS)
            refused = await deletions.refuse_staged(conn)
            today = await ledger.claim_day(conn, day)
            if not await conn.fetchval(_SEEN, today, self._window):
                try:
                    async with conn.transaction():  # a savepoint: a duplicate undoes only this attempt
                        return Outcome(await conn.fetchval(_STORE_NEW, today), 0, refused)
                except asyncpg.UniqueViolationError:
                    pass
            return Outcome(await conn.fetchval(_STORE_DEDUP, today, self._window), 0, refused)

    async def _dead_letter(self, conn: db.Conn, row: Sequence[Any], exc: BaseException) -> None:
        sqlstate = getattr(exc, "sqlstate", None)
        log.warning("event refused by Postgres (%s %s); kept in dead_letters", sqlstate, type(exc).__name__)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        await conn.execute(_DEAD_LETTER, row[0], row[1], dump_row(row), reason, sqlstate, *person_of(row))


def person_of(row: Sequence[Any]) -> tuple[str | None, str | None, dt.datetime | None]:
    """A queued row's user_id, anonymous_id and receipt, kept beside its dead letter so that a deletion
    request finds it (workers/deletions.py); None where a row our own bug mangled has no usable value."""

    def text(i: int) -> str | None:
        value = row[i] if len(row) > i else None
        return value if isinstance(value, str) else None

    received = row[RECEIVED_AT] if len(row) > RECEIVED_AT else None
    when = None
    if isinstance(received, int) and not isinstance(received, bool):
        with contextlib.suppress(OverflowError, OSError, ValueError):
            when = dt.datetime.fromtimestamp(received / 1_000_000, dt.UTC)
    return text(ROW_FIELDS.index("user_id")), text(ROW_FIELDS.index("anonymous_id")), when


def dump_row(row: Sequence[Any]) -> bytes:
    """A queued row as JSON (properties inlined as text), for a human reading dead_letters."""
    record = dict(zip(ROW_FIELDS, row, strict=False))
    for field in ("properties", "context"):  # JSON text; a row our own bug mangled may hold anything
        value = record.get(field)
        if isinstance(value, bytes | bytearray | memoryview):
            record[field] = bytes(value).decode("utf-8", "backslashreplace")
    return orjson.dumps(record, default=repr, option=orjson.OPT_NON_STR_KEYS)
