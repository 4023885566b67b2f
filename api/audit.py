"""The audit log of flags and experiments: every change, written in the change's own transaction (who,
which key, what, before and after), and read newest first at `GET .../audit-log`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import permissions as p
from api.flag_access import KEY, Actor, actor
from api.flag_wire import AuditOut
from api.limits import Conn
from api.rest import cursor, page_limit, path_uuid, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import Page
from eventplane.errors import validation

Action = Literal["create", "update", "delete", "status", "rerandomize"]
FLAG = "feature_flag"
EXPERIMENT = "experiment"
DELETION = "deletion"  # a request to delete one person's events (api/deletions.py)
# Which permission reads which entity's entries.
_READ = {FLAG: p.FLAGS_READ, EXPERIMENT: p.EXPERIMENTS_READ, DELETION: p.DATA_DELETE}
_encoder = msgspec.json.Encoder()

_INSERT = """
INSERT INTO audit_log (workspace_id, actor_user_id, actor_key_id, action, entity_type, entity_key, before, after)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb)
"""


def _json(snapshot: Any) -> str | None:
    return None if snapshot is None else _encoder.encode(snapshot).decode()


async def record(conn: Conn, who: Actor, action: Action, entity_type: str, key: str, before: Any, after: Any) -> None:
    """One entry; call it inside the change's transaction, so the log has every committed change and no other."""
    await conn.execute(_INSERT, who.workspace_id, who.user_id, who.key_id, action, entity_type, key, _json(before),
                       _json(after))  # fmt: skip


def _out(row: Any) -> AuditOut:
    return AuditOut(id=row["id"], action=row["action"], entity_type=row["entity_type"], entity_key=row["entity_key"],
                    actor_user_id=row["actor_user_id"], actor_key_id=row["actor_key_id"],
                    before=None if row["before"] is None else msgspec.json.decode(row["before"]),
                    after=None if row["after"] is None else msgspec.json.decode(row["after"]),
                    at=row["created_at"])  # fmt: skip


_LIST = """
SELECT id, action, entity_type, entity_key, actor_user_id, actor_key_id, before::text AS before,
       after::text AS after, created_at
FROM audit_log
WHERE workspace_id = $1 AND entity_type = ANY($2::text[]) AND ($3::text IS NULL OR entity_key = $3)
  AND (created_at, id) < ($4, $5)
ORDER BY created_at DESC, id DESC LIMIT $6
"""
_END_OF_TIME = (dt.datetime.max.replace(tzinfo=dt.UTC), uuid.UUID(int=(1 << 128) - 1))


async def list_entries(request: Request) -> Response:
    """Newest first. Each caller sees the entries of the entities they may read (`flags:read`,
    `experiments:read`, `data:delete` for deletion requests); `entity_type` and `entity_key` narrow the list."""
    workspace_id = path_uuid(request, "workspace_id")
    who = await actor(request, workspace_id, None)
    entity_type = request.query_params.get("entity_type")
    if entity_type is not None and entity_type not in _READ:
        raise validation(f"'entity_type' is one of {', '.join(_READ)}", "entity_type")
    entity_key = request.query_params.get("entity_key")
    if entity_key is not None and KEY.fullmatch(entity_key) is None:
        raise validation("'entity_key' is a flag or experiment key (lower-case letters, digits, _ . -)", "entity_key")
    types = [t for t, perm in _READ.items() if who.may(perm) and entity_type in (None, t)]
    if not types:
        who.require(_READ[entity_type or FLAG])
    limit = page_limit(request)
    position = cursor(request) or _END_OF_TIME
    rows = await services(request).pool.fetch(_LIST, workspace_id, types, entity_key,
                                              *position, limit + 1)  # fmt: skip
    return reply_page(rows, limit, _out)


ENDPOINTS = [
    Endpoint("GET", "/api/v1/workspaces/{workspace_id:uuid}/audit-log", list_entries,
             "Changes to flags and experiments, and deletion requests, newest first", None, Page[AuditOut],
             auth="session_or_key",
             query=("entity_type", "entity_key", "limit", "cursor"), errors=(400, 401, 403, 404)),
]  # fmt: skip
