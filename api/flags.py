"""Feature flags of a workspace: create, list, read, change, delete.

Every change runs under the workspace lock (the plan cap counts under it), writes its audit entry and
bumps the config version in the same transaction, and after the commit tells every edge
(`eventplane.flagconfig.publish`).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import audit, flag_changes, flag_rules, limits
from api import permissions as p
from api.errors import not_found
from api.flag_access import actor, path_key
from api.flag_wire import FlagIn, FlagOut, FlagPatch, FlagValue, Rule
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import Page
from eventplane.errors import ApiError, validation

COLUMNS = (
    "id, key, name, description, enabled, salt, rollout::float8 AS rollout, rules::text AS rules, value_type, "
    "default_value::text AS default_value, on_value::text AS on_value, variations::text AS variations, "
    "created_at, updated_at"
)
_ROLLOUT_ONLY = frozenset({"rollout", "enabled"})
_decode = msgspec.json.decode


def out(row: Any) -> FlagOut:
    return FlagOut(id=row["id"], key=row["key"], name=row["name"], description=row["description"],
                   enabled=row["enabled"], salt=row["salt"], rollout=row["rollout"], rules=_decode(row["rules"]),
                   value_type=row["value_type"], default_value=_decode(row["default_value"]),
                   on_value=_decode(row["on_value"]), values=_decode(row["variations"]),
                   created_at=row["created_at"], updated_at=row["updated_at"])  # fmt: skip


def salt() -> str:
    return secrets.token_hex(6)


def _definition(value_type: str, rollout: float, rules: list[Rule], values: list[FlagValue], default_value: Any,
                on_value: Any) -> dict[str, Any]:  # fmt: skip
    """The evaluated part of a flag, checked whole (a change of one field can invalidate another) and as stored."""
    flag_rules.percent(rollout, "rollout")
    flag_rules.weights(values, "values")
    for i, v in enumerate(values):
        flag_rules.value_of_type(value_type, v.value, f"values[{i}].value")
    boolean = value_type == "boolean"
    if default_value is msgspec.UNSET:
        if not boolean:
            raise validation(f"A {value_type} flag needs 'default_value'", "default_value")
        default_value = False
    if on_value is msgspec.UNSET:
        if not boolean and not values:
            raise validation(f"A {value_type} flag without 'values' needs 'on_value'", "on_value")
        on_value = values[0].value if values else True
    flag_rules.value_of_type(value_type, default_value, "default_value")
    flag_rules.value_of_type(value_type, on_value, "on_value")
    return {
        "rollout": rollout,
        "rules": flag_rules.rules(rules, value_type),
        "value_type": value_type,
        "default_value": default_value,
        "on_value": on_value,
        "variations": [msgspec.to_builtins(v) for v in values],
    }


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def _flag_row(conn: Any, workspace_id: uuid.UUID, key: str, lock: bool = False) -> Any:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM feature_flags WHERE workspace_id = $1 AND key = $2"
                              f"{' FOR UPDATE' if lock else ''}", workspace_id, key)  # fmt: skip
    if row is None:
        raise not_found("feature flag")
    return row


_INSERT = f"""
INSERT INTO feature_flags (workspace_id, key, name, description, enabled, salt, rollout, rules, value_type,
                           default_value, on_value, variations, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10::text::jsonb, $11::text::jsonb, $12::text::jsonb, $13)
ON CONFLICT (workspace_id, key) DO NOTHING
RETURNING {COLUMNS}
"""


async def create(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    who = await actor(request, workspace_id, p.FLAGS_WRITE)
    data = await body(request, FlagIn)
    d = _definition(data.value_type, data.rollout, data.rules, data.values, data.default_value, data.on_value)
    name = data.key if data.name is msgspec.UNSET else data.name
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, plan):
        await who.recheck(conn, p.FLAGS_WRITE)
        await limits.check_flag_room(conn, plan, workspace_id)
        row = await conn.fetchrow(_INSERT, workspace_id, data.key, name, data.description, data.enabled, salt(),
                                  d["rollout"], _json(d["rules"]), d["value_type"], _json(d["default_value"]),
                                  _json(d["on_value"]), _json(d["variations"]), who.user_id)  # fmt: skip
        if row is None:
            raise ApiError(409, "FLAG_EXISTS", f"The workspace has a flag '{data.key}' already", {"key": data.key})
        created = out(row)
        await flag_changes.committing(conn, who, "create", audit.FLAG, data.key, None, created)
    await flag_changes.published(svc, workspace_id)
    return reply(created, 201)


async def list_flags(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await actor(request, workspace_id, p.FLAGS_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"SELECT {COLUMNS} FROM feature_flags WHERE workspace_id = $1 AND (created_at, id) > ($2, $3) "
        "ORDER BY created_at, id LIMIT $4",
        workspace_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def get(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await actor(request, workspace_id, p.FLAGS_READ)
    return reply(
        out(await _flag_row(services(request).pool, workspace_id, path_key(request, "flag_key", "feature flag")))
    )


def _permission_for(data: FlagPatch) -> str:
    given = {f for f in data.__struct_fields__ if getattr(data, f) is not msgspec.UNSET}
    return p.FLAGS_ROLLOUT if given <= _ROLLOUT_ONLY else p.FLAGS_WRITE


def _pick(new: Any, old: Any) -> Any:
    return old if new is msgspec.UNSET else new


_UPDATE = f"""
UPDATE feature_flags SET name = $3, description = $4, enabled = $5, rollout = $6, rules = $7::text::jsonb,
       value_type = $8, default_value = $9::text::jsonb, on_value = $10::text::jsonb, variations = $11::text::jsonb,
       updated_at = now()
WHERE workspace_id = $1 AND key = $2
RETURNING {COLUMNS}
"""


async def update(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    key = path_key(request, "flag_key", "feature flag")
    who = await actor(request, workspace_id, None)
    data = await body(request, FlagPatch)
    permission = _permission_for(data)
    who.require(permission)
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        await who.recheck(conn, permission)
        before = out(await _flag_row(conn, workspace_id, key, lock=True))
        d = _merged(before, data)
        plain = (_pick(data.name, before.name), _pick(data.description, before.description),
                 _pick(data.enabled, before.enabled))  # fmt: skip
        if _json([*plain, d]) == _json([before.name, before.description, before.enabled, _merged(before, FlagPatch())]):
            return reply(before)  # nothing changes: no entry, no new version
        row = await conn.fetchrow(_UPDATE, workspace_id, key, *plain, d["rollout"], _json(d["rules"]), d["value_type"],
                                  _json(d["default_value"]), _json(d["on_value"]), _json(d["variations"]))  # fmt: skip
        changed = out(row)
        await flag_changes.committing(conn, who, "update", audit.FLAG, key, before, changed)
    await flag_changes.published(svc, workspace_id)
    return reply(changed)


def _merged(before: FlagOut, data: FlagPatch) -> dict[str, Any]:
    rules = data.rules if data.rules is not msgspec.UNSET else msgspec.convert(before.rules, list[Rule])
    values = data.values if data.values is not msgspec.UNSET else msgspec.convert(before.values, list[FlagValue])
    value_type, rollout = _pick(data.value_type, before.value_type), _pick(data.rollout, before.rollout)
    default_value, on_value = _pick(data.default_value, before.default_value), _pick(data.on_value, before.on_value)
    return _definition(value_type, rollout, rules, values, default_value, on_value)


async def delete(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    key = path_key(request, "flag_key", "feature flag")
    who = await actor(request, workspace_id, p.FLAGS_WRITE)
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        await who.recheck(conn, p.FLAGS_WRITE)
        before = out(await _flag_row(conn, workspace_id, key, lock=True))
        await conn.execute("DELETE FROM feature_flags WHERE workspace_id = $1 AND key = $2", workspace_id, key)
        await flag_changes.committing(conn, who, "delete", audit.FLAG, key, before, None)
    await flag_changes.published(svc, workspace_id)
    return no_content()


WS = "/api/v1/workspaces/{workspace_id:uuid}/feature-flags"
ONE = WS + "/{flag_key}"
_E = (400, 401, 403, 404)
ENDPOINTS = [
    Endpoint("POST", WS, create, "Create a feature flag", FlagIn, FlagOut, 201, auth="session_or_key",
             errors=(*_E, 409)),
    Endpoint("GET", WS, list_flags, "A workspace's feature flags", None, Page[FlagOut], auth="session_or_key",
             query=("limit", "cursor"), errors=_E),
    Endpoint("GET", ONE, get, "One feature flag", None, FlagOut, auth="session_or_key", errors=_E),
    Endpoint("PATCH", ONE, update, "Change a feature flag (keys with flags:write: rollout and enabled only)",
             FlagPatch, FlagOut, auth="session_or_key", errors=_E),
    Endpoint("DELETE", ONE, delete, "Delete a feature flag", None, None, 204, auth="session_or_key", errors=_E),
]  # fmt: skip
