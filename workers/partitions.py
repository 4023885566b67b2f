"""The daily partitions of `events` (made by ensure_event_partitions, named events_pYYYYMMDD): which
exist, and which day each holds. Retention and deletions work one partition at a time, so each bounded
batch is a delete by ctid within one table (a TID scan), never a join across all of them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from eventplane import db

_NAME = re.compile(r"events_p(\d{8})")


@dataclass(frozen=True)
class Partition:
    name: str
    day: dt.date  # holds the rows received on this UTC day

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.day, dt.time(), dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=1)


async def events_partitions(conn: db.Conn, before: dt.datetime | None = None) -> list[Partition]:
    """The partitions of `events`, oldest first; with `before`, only those holding times before it."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass"
    )
    found = []
    for row in rows:
        match = _NAME.fullmatch(row["relname"])
        if match:
            found.append(Partition(row["relname"], dt.datetime.strptime(match.group(1), "%Y%m%d").date()))
    return sorted((p for p in found if before is None or p.start < before), key=lambda p: p.day)
