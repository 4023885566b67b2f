"""The deduplication window: the exactly-once ledger `event_ids`, kept for EVENTPLANE_DEDUP_WINDOW_DAYS.

The guarantee (docs/storage.md says the same). Days are UTC days of the database's clock, taken when the
committing transaction starts ("the commit's day"). With a window of W days, a copy of
(workspace_id, message_id) committed on day D is a duplicate, and stored nothing of, when a copy of the
same id was claimed on any day from D - W to D (or later: see the race below). Day D - W is the last day
still deduplicated; a copy first claimed on day D - W - 1 is stored again. In hours: a retry committed
within W x 24 h of the first commit is always deduplicated; one committed more than (W + 1) x 24 h later
never is; between the two, it depends on the time of day.

How. The ledger is partitioned by the claim's day. A commit on day D inserts its ids into D's partition
(whose primary key holds each id once: two commits of one id on the same day wait for each other and
one wins), after looking each id up in the partitions of days D - W .. D - 1 and D + 1. Two commits on
adjacent days (one that began at 23:59:59.9, one at 00:00:00.1) would not see each other's uncommitted
ids, so every commit first locks `event_ids_day_guard` in a mode that depends on its day's parity
(`event_ids_claim_day`): commits of one day share it, and a commit of the next day waits until those of
the day before have ended, then sees what they claimed. Commits of days two apart never overlap: a
statement lasts at most 30 s (the pools' command timeout). The guard is taken before any row lock of the
claim, and ids are claimed in key order, so concurrent commits wait for each other without deadlocking.

Partitions are made a week ahead with the events' (eventplane/db.py); `drop_expired` drops those older
than D - W whole (a short lock on the parent; retried on the next run if it cannot get it in 2 s).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from eventplane import db

log = logging.getLogger("eventplane.workers.ledger")
DEFAULT_WINDOW_DAYS = 7
LOCK_TIMEOUT = "2s"  # a drop waits this long for commits in flight, then gives up until the next run
_PARTITION = re.compile(r"event_ids_p(\d{8})")

# `$1` is the commit's day, `$2` the window in days: the ledger's copies of `s`'s id claimed on another day
# of the window, or the day after (the commit's own day is its partition's primary key, checked by the
# insert itself). No claim can be two days ahead of a commit in flight. Written as closed ranges so that
# the other partitions are pruned when the statement starts: each staged id costs W + 1 index probes.
SEEN_ELSEWHERE = """
    SELECT 1 FROM event_ids e
    WHERE e.workspace_id = s.workspace_id AND e.message_id = s.message_id
      AND ((e.day >= $1::date - $2::int AND e.day <= $1::date - 1) OR e.day = $1::date + 1)"""


async def claim_day(conn: db.Conn, day: dt.date | None = None) -> dt.date:
    """Inside the commit's transaction, before its claims: the commit's day (`day` given, for tests, or
    today by the database's clock), with the day guard held until the transaction ends."""
    claimed: dt.date = await conn.fetchval("SELECT event_ids_claim_day($1)", day)
    return claimed


def first_kept_day(today: dt.date, window_days: int) -> dt.date:
    """The oldest day whose claims still deduplicate a commit of `today`."""
    return today - dt.timedelta(days=window_days)


async def partitions(conn: db.Conn) -> dict[dt.date, str]:
    """The ledger's partitions by day."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'event_ids'::regclass"
    )
    found: dict[dt.date, str] = {}
    for row in rows:
        match = _PARTITION.fullmatch(row["relname"])
        if match:
            found[dt.datetime.strptime(match.group(1), "%Y%m%d").date()] = row["relname"]
    return found


async def drop_expired(conn: db.Conn, window_days: int, today: dt.date | None = None) -> list[str]:
    """Drop the ledger partitions of days before the window of yesterday (`today` default: the database's).
    Returns the dropped partitions' names; one whose lock is not had in LOCK_TIMEOUT waits for the next run."""
    if today is None:
        today = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    # One day more than today's window: a commit that began just before midnight (yesterday's day) still
    # looks up yesterday's window, whose first day is the one before today's.
    first = first_kept_day(today, window_days) - dt.timedelta(days=1)
    dropped: list[str] = []
    for day, name in sorted((await partitions(conn)).items()):
        if day >= first:
            break
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                await conn.execute(f'DROP TABLE "{name}"')
        except db.LOCK_NOT_AVAILABLE:
            log.info("ledger partition %s busy; dropped on a later run", name)
            break
        dropped.append(name)
    if dropped:
        log.info("ledger: dropped %d partitions older than %s", len(dropped), first)
    return dropped
