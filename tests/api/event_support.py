"""Loading events straight into `events` with COPY (what the workers store, without the queue), for the
event data API's tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from eventplane import db

COLUMNS = ("workspace_id", "message_id", "event_type", "user_id", "anonymous_id", "value", "properties",
           "timestamp", "received_at", "context")  # fmt: skip
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Ev:
    message_id: str
    event_type: str
    timestamp: dt.datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    value: float | None = None

    def record(self, workspace_id: str | uuid.UUID, received_at: dt.datetime | None = None) -> tuple[Any, ...]:
        return (uuid.UUID(str(workspace_id)), self.message_id, self.event_type, self.user_id, self.anonymous_id,
                self.value, json.dumps(self.properties), self.timestamp, received_at or NOW, None)  # fmt: skip


async def load(pool: asyncpg.Pool, records: Iterable[Sequence[Any]], days: Iterable[dt.date] = ()) -> None:
    """COPY the records (in COLUMNS order) into `events`, making the partitions of `days` first."""
    async with pool.acquire() as conn:
        for day in set(days):
            await db.ensure_partitions(conn, day)
        await conn.copy_records_to_table("events", records=records, columns=COLUMNS)


def chunks(records: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
