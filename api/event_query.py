"""The event filters shared by the list, the export and the live stream, and the SQL they become.

Filters: `event_type`, `user_id`, `anonymous_id` (exact); `from` / `to` (RFC 3339 times, or YYYY-MM-DD for
that day's UTC midnight) on the event's `timestamp`, `from` inclusive, `to` exclusive; and
`property=KEY:VALUE` (repeatable; the property's JSON value as text equals VALUE, so `plan:pro`, `count:3`
and `beta:true` all match). Only the filters given enter the SQL, so each query is planned for its own
index: (workspace_id, event_type, timestamp), (workspace_id, user_id, timestamp),
(workspace_id, anonymous_id, timestamp) or (workspace_id, timestamp).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from eventplane.errors import validation

MAX_VALUE = 200  # characters of one filter value
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_KEY = re.compile(r"[A-Za-z0-9_.$-]{1,100}")
COLUMNS = ('message_id, event_type, user_id, anonymous_id, value, properties::text AS properties, "timestamp", '
           "received_at, context::text AS context")  # fmt: skip


@dataclass(frozen=True)
class Filters:
    event_type: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    properties: tuple[tuple[str, str], ...] = ()

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether a live event (as eventplane.live publishes it) passes these filters."""
        exact = (("event_type", self.event_type), ("user_id", self.user_id), ("anonymous_id", self.anonymous_id))
        if any(v is not None and event.get(k) != v for k, v in exact):
            return False
        stamp = dt.datetime.fromisoformat(event["timestamp"])
        if (self.start and stamp < self.start) or (self.end and stamp >= self.end):
            return False
        props = event.get("properties") or {}
        return all(key in props and as_text(props[key]) == value for key, value in self.properties)


def as_text(value: Any) -> str:
    """A JSON value as Postgres's `->>` gives it: strings bare, true/false/numbers in JSON form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not 0 < len(raw) <= MAX_VALUE or "\x00" in raw:
        raise validation(f"'{name}' must be 1-{MAX_VALUE} characters, without NUL", name)
    return raw


def _time(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        if _DATE.fullmatch(raw):  # a day alone is its midnight in UTC
            return dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError(raw)
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise validation(f"'{name}' must be an RFC 3339 time with a zone, e.g. 2026-12-01T00:00:00Z", name) from None


def _property(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition(":")
    if not sep or not _KEY.fullmatch(key) or len(value) > MAX_VALUE or "\x00" in value:
        raise validation("'property' is KEY:VALUE, KEY of letters, digits and _ . $ - (e.g. plan:pro)", "property")
    return key, value


def parse(request: Request) -> Filters:
    start, end = _time(request, "from"), _time(request, "to")
    if start and end and start >= end:
        raise validation("'from' must be before 'to'", "from")
    props = tuple(_property(raw) for raw in request.query_params.getlist("property"))
    if len(props) > 10:
        raise validation("Give at most 10 'property' filters", "property")
    return Filters(_text(request, "event_type"), _text(request, "user_id"), _text(request, "anonymous_id"),
                   start, end, props)  # fmt: skip


def sql(workspace_id: uuid.UUID, f: Filters, before: tuple[dt.datetime, str] | None = None,
        limit: int | None = None) -> tuple[str, list[Any]]:  # fmt: skip
    """The SELECT of the matching events, newest first ("timestamp", message_id descending), after the
    keyset position `before`; message_id is unique per workspace (the ledger), so the order is total."""
    args: list[Any] = [workspace_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["workspace_id = $1"]
    for column in ("event_type", "user_id", "anonymous_id"):
        if getattr(f, column) is not None:
            where.append(f"{column} = {arg(getattr(f, column))}")
    if f.start:
        where.append(f'"timestamp" >= {arg(f.start)}')
    if f.end:
        where.append(f'"timestamp" < {arg(f.end)}')
    for key, value in f.properties:
        where.append(f"properties ->> {arg(key)} = {arg(value)}")
    if before:
        where.append(f'("timestamp", message_id) < ({arg(before[0])}, {arg(before[1])})')
    query = f'SELECT {COLUMNS} FROM events WHERE {" AND ".join(where)} ORDER BY "timestamp" DESC, message_id DESC'
    if limit is not None:
        query += f" LIMIT {arg(limit)}"
    return query, args
