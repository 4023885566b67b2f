"""Stored events: the filtered list (keyset pages, newest first), the streamed export and the event types.

Every route needs `events:read`: VIEWER and up, or an API key with the `events:read` (or `admin`) scope.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api import access, event_query
from api import permissions as p
from api.event_wire import EventOut, EventTypeOut, EventTypesOut
from api.rest import encode_cursor, page_limit, path_uuid, query_date, reply, text_cursor
from api.routing import Endpoint
from api.state import services
from api.wire import Page
from eventplane.errors import validation

EXPORT_BATCH = 2000  # rows a server-side cursor fetches at once; the export holds about one batch in memory
_encoder = msgspec.json.Encoder()
_CSV_HEADER = ("message_id", "event_type", "user_id", "anonymous_id", "value", "timestamp", "received_at",
               "properties", "context")  # fmt: skip


def out(row: Any) -> EventOut:
    context = row["context"]
    return EventOut(message_id=row["message_id"], event_type=row["event_type"], user_id=row["user_id"],
                    anonymous_id=row["anonymous_id"], value=row["value"],
                    properties=msgspec.Raw(row["properties"].encode()), timestamp=row["timestamp"],
                    received_at=row["received_at"],
                    context=None if context is None else msgspec.Raw(context.encode()))  # fmt: skip


async def list_events(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.workspace(request, workspace_id, p.EVENTS_READ)
    filters = event_query.parse(request)
    limit = page_limit(request)
    query, args = event_query.sql(workspace_id, filters, text_cursor(request), limit + 1)
    rows = await (await services(request).data.pool(workspace_id)).fetch(query, *args)
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = None if last is None else encode_cursor(last["timestamp"], last["message_id"])
    return reply(Page(items=[out(r) for r in rows[:limit]], next_cursor=next_cursor))


def _ndjson(rows: list[Any]) -> bytes:
    return b"".join(_encoder.encode(out(r)) + b"\n" for r in rows)


def _csv(rows: list[Any], header: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(_CSV_HEADER)
    for r in rows:
        stamps = (r["timestamp"].isoformat(), r["received_at"].isoformat())
        writer.writerow((r["message_id"], r["event_type"], r["user_id"], r["anonymous_id"], r["value"], *stamps,
                         r["properties"], r["context"]))  # fmt: skip
    return buffer.getvalue().encode()


async def _stream(pool: asyncpg.Pool, query: str, args: list[Any], fmt: str) -> AsyncIterator[bytes]:
    """Rows through a server-side cursor, one batch at a time: memory stays that of a batch, whatever the
    size; a slow reader holds back the cursor (uvicorn's send waits for the socket)."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cur = await conn.cursor(query, *args)
        first = True
        while True:
            rows = await cur.fetch(EXPORT_BATCH)
            if fmt == "csv":
                yield _csv(rows, first)
            elif rows:
                yield _ndjson(rows)
            first = False
            if len(rows) < EXPORT_BATCH:
                return


async def export(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.workspace(request, workspace_id, p.EVENTS_READ)
    fmt = request.query_params.get("format", "ndjson")
    if fmt not in ("ndjson", "csv"):
        raise validation("'format' is ndjson or csv", "format")
    query, args = event_query.sql(workspace_id, event_query.parse(request))
    media = "application/x-ndjson" if fmt == "ndjson" else "text/csv; charset=utf-8"
    headers = {"content-disposition": f'attachment; filename="events-{workspace_id}.{fmt}"'}
    pool = await services(request).data.pool(workspace_id)
    return StreamingResponse(_stream(pool, query, args, fmt), media_type=media, headers=headers)


async def event_types(request: Request) -> Response:
    """Every event type stored in [from, to] (UTC days, both optional), most frequent first."""
    workspace_id = path_uuid(request, "workspace_id")
    await access.workspace(request, workspace_id, p.EVENTS_READ)
    start, to = query_date(request, "from"), query_date(request, "to")
    if start and to and start > to:
        raise validation("'from' must not be after 'to'", "from")
    rows = await (await services(request).data.pool(workspace_id)).fetch(
        "SELECT event_type, sum(events)::bigint AS events, max(day) AS last_seen FROM usage_daily "
        "WHERE workspace_id = $1 AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day <= $3) "
        "GROUP BY event_type ORDER BY events DESC, event_type",
        workspace_id,
        start,
        to,
    )
    items = [EventTypeOut(event_type=r["event_type"], events=r["events"], last_seen=r["last_seen"]) for r in rows]
    return reply(EventTypesOut(items=items))


WS = "/api/v1/workspaces/{workspace_id:uuid}"
FILTERS = ("event_type", "user_id", "anonymous_id", "from", "to", "property")
ENDPOINTS = [
    Endpoint("GET", f"{WS}/events", list_events, "Stored events, newest first, filtered, in keyset pages", None,
             Page[EventOut], auth="session_or_key", query=(*FILTERS, "limit", "cursor"), errors=(400, 401, 403, 404)),
    Endpoint("GET", f"{WS}/events/export", export, "Every matching event, streamed as NDJSON or CSV", None, None,
             auth="session_or_key", query=(*FILTERS, "format"), errors=(400, 401, 403, 404)),
    Endpoint("GET", f"{WS}/event-types", event_types, "Event types with their counts and the last day seen", None,
             EventTypesOut, auth="session_or_key", query=("from", "to"), errors=(400, 401, 403, 404)),
]  # fmt: skip
