"""Deletion on request: `POST .../deletions` asks for every stored event of one person (a user_id or an
anonymous_id) to be deleted; `GET .../deletions[/{id}]` polls it (pending -> running -> done). A worker
does the deleting (workers/deletions.py, where the cut-off and suppression are explained); the request
and its audit entry commit together. Needs `data:delete` (OWNER, ADMIN, or a key with scope `admin`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct
from starlette.requests import Request
from starlette.responses import Response

from api import audit
from api import permissions as p
from api.errors import not_found
from api.flag_access import actor
from api.rest import after, body, cursor, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import Input, Page
from eventplane.errors import validation

PersonId = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\x00]*$")]  # the event format's limits
ENTITY = audit.DELETION
ONE_PERSON = "Give exactly one of 'user_id' and 'anonymous_id'"  # a rule the OpenAPI schema does not state


class DeletionIn(Input):
    user_id: PersonId | None = None
    anonymous_id: PersonId | None = None
    suppress: bool = False  # also refuse this person's future events


class DeletionOut(Struct, kw_only=True):
    id: uuid.UUID
    status: Literal["pending", "running", "done"]
    user_id: str | None
    anonymous_id: str | None
    suppress: bool
    rows_deleted: int  # stored events deleted so far
    events_refused: int  # this person's events refused at commit (queued before the request, or suppressed)
    dead_letters_deleted: int  # this person's refused rows deleted from dead_letters
    webhook_rows_deleted: int  # this person's queued, undelivered webhook payloads deleted
    created_at: dt.datetime  # also the cut-off: events received before it are deleted
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


_COLUMNS = (
    "id, status, user_id, anonymous_id, suppress, rows_deleted, events_refused, dead_letters_deleted, "
    "webhook_rows_deleted, created_at, started_at, finished_at"
)
_INSERT = f"""
INSERT INTO deletions (workspace_id, user_id, anonymous_id, suppress, actor_user_id, actor_key_id)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}
"""


def _out(row: object) -> DeletionOut:
    return msgspec.convert(dict(row), DeletionOut)  # type: ignore[call-overload]


async def create(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    who = await actor(request, workspace_id, p.DATA_DELETE)
    asked = await body(request, DeletionIn)
    if (asked.user_id is None) == (asked.anonymous_id is None):
        raise validation(ONE_PERSON, "user_id")
    svc = services(request)
    data = await svc.data.pool(workspace_id)  # the request lives beside the events it deletes
    what = {"user_id": asked.user_id, "anonymous_id": asked.anonymous_id, "suppress": asked.suppress}
    args = (workspace_id, asked.user_id, asked.anonymous_id, asked.suppress, who.user_id, who.key_id)
    if data is svc.pool:  # the default instance: the request and its audit entry commit together
        async with svc.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_INSERT, *args)
            assert row is not None
            await audit.record(conn, who, "create", ENTITY, str(row["id"]), None, what)
        return reply(_out(row), 202)
    row = await data.fetchrow(_INSERT, *args)  # another instance: the request first, then the hub's audit entry
    assert row is not None
    async with svc.pool.acquire() as conn:
        await audit.record(conn, who, "create", ENTITY, str(row["id"]), None, what)
    return reply(_out(row), 202)


async def get(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await actor(request, workspace_id, p.DATA_DELETE)
    row = await (await services(request).data.pool(workspace_id)).fetchrow(
        f"SELECT {_COLUMNS} FROM deletions WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        path_uuid(request, "deletion_id"),
    )
    if row is None:
        raise not_found("deletion")
    return reply(_out(row))


async def list_deletions(request: Request) -> Response:
    """Oldest first, paginated."""
    workspace_id = path_uuid(request, "workspace_id")
    await actor(request, workspace_id, p.DATA_DELETE)
    limit = page_limit(request)
    rows = await (await services(request).data.pool(workspace_id)).fetch(
        f"SELECT {_COLUMNS} FROM deletions WHERE workspace_id = $1 AND (created_at, id) > ($2, $3) "
        "ORDER BY created_at, id LIMIT $4",
        workspace_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(list(rows), limit, _out)


WS = "/api/v1/workspaces/{workspace_id:uuid}/deletions"
_E = (400, 401, 403, 404)
ENDPOINTS = [
    Endpoint("POST", WS, create, "Delete every stored event of one person (a worker does it; poll the answer)",
             DeletionIn, DeletionOut, 202, auth="session_or_key", errors=_E),
    Endpoint("GET", WS, list_deletions, "The workspace's deletion requests, oldest first", None, Page[DeletionOut],
             auth="session_or_key", query=("limit", "cursor"), errors=_E),
    Endpoint("GET", WS + "/{deletion_id:uuid}", get, "One deletion request and its progress", None, DeletionOut,
             auth="session_or_key", errors=_E),
]  # fmt: skip
