"""API keys of a workspace: create (plaintext shown once), list, read, rename/re-scope, revoke, rotate.

Also served under /api/v1/api-keys (the older style), where the workspace comes from `workspace_id` in
the body or query, or is the caller's only workspace. Every change reaches every edge within a second
(`eventplane.apikeys.refresh`). Keys with the `admin` scope are created and managed only by ADMIN and OWNER.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import access, limits, members, workspaces
from api import permissions as p
from api.errors import conflict, forbidden, not_found
from api.permissions import Role
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, query_uuid, reply, reply_page, utc
from api.routing import Endpoint
from api.state import services
from api.wire import (
    KeyCreatedOut,
    KeyIn,
    KeyOut,
    KeyPatch,
    LegacyKeyIn,
    LegacyKeyPatch,
    LegacyRotateIn,
    Page,
    RotatedOut,
    RotateIn,
)
from eventplane import apikeys, scopes, tenants
from eventplane.errors import ApiError, validation

COLUMNS = (
    "id, workspace_id, name, description, key_prefix, scopes, created_at, last_used_at, expires_at, key_hash, "
    "replaced_by, "
    f"({limits.ACTIVE_KEY}) AS active"
)
SELECT = f"SELECT {COLUMNS} FROM api_keys"


def out(row: Any) -> KeyOut:
    return KeyOut(id=row["id"], workspace_id=row["workspace_id"], name=row["name"], description=row["description"],
                  key_prefix=row["key_prefix"],
                  scopes=list(row["scopes"]), created_at=row["created_at"], last_used_at=row["last_used_at"],
                  expires_at=row["expires_at"], is_active=row["active"])  # fmt: skip


def _check_scopes(role: Role, names: list[str]) -> list[str]:
    try:
        valid = scopes.validate(names)
    except scopes.UnknownScope as exc:
        allowed = sorted(scopes.SCOPES | set(scopes.BUNDLES))
        raise validation(f"Unknown scope '{exc.name}'; use one of {', '.join(allowed)}", "scopes") from None
    _check_admin_scope(role, valid)
    return valid


def _check_admin_scope(role: Role, names: list[str]) -> None:
    if scopes.ADMIN in names and not role.at_least(Role.ADMIN):
        raise forbidden("Only an ADMIN or OWNER manages keys with the 'admin' scope", {"scope": scopes.ADMIN})


async def _key_row(conn: Any, workspace_id: uuid.UUID, key_id: uuid.UUID, lock: bool = False) -> Any:
    row = await conn.fetchrow(
        f"{SELECT} WHERE id = $1 AND workspace_id = $2{' FOR UPDATE' if lock else ''}", key_id, workspace_id
    )
    if row is None:
        raise not_found("API key")
    return row


# Operations (shared by both URL styles) ------------------------------------------------------------------
async def _create(request: Request, workspace_id: uuid.UUID, data: KeyIn) -> Response:
    actor = await access.membership(request, workspace_id, p.API_KEYS_WRITE)
    access.require_verified(request, actor.user)
    names = _check_scopes(actor.role, data.scopes)
    expires_at = utc(data.expires_at, "expires_at")
    if expires_at is not None and expires_at <= dt.datetime.now(dt.UTC):
        raise validation("'expires_at' must be in the future", "expires_at")
    async with limits.locked_workspace(services(request).pool, workspace_id) as (conn, plan):
        _check_scopes(await _writer_role(conn, actor), names)
        await limits.check_key_room(conn, plan, workspace_id)
        record, plaintext = await tenants.create_api_key(conn, workspace_id=str(workspace_id), name=data.name,
                                                         scope_names=names, expires_at=expires_at,
                                                         created_by=str(actor.user.id),
                                                         description=data.description)  # fmt: skip
    return reply(created(record, plaintext), 201)


async def _writer_role(conn: Any, actor: access.Membership) -> Role:
    """The actor's role read again under the workspace lock, which must still allow api_keys:write."""
    role = await members.role_now(conn, actor)
    if not p.allows(role, p.API_KEYS_WRITE):
        raise forbidden(f"Your role ({role.value}) lacks the permission '{p.API_KEYS_WRITE}'",
                        {"required": p.API_KEYS_WRITE})  # fmt: skip
    return role


def created(record: dict[str, Any], plaintext: str) -> KeyCreatedOut:
    return KeyCreatedOut(id=uuid.UUID(record["id"]), workspace_id=uuid.UUID(record["workspace_id"]),
                         name=record["name"], description=record["description"], key=plaintext,
                         key_prefix=record["key_prefix"], scopes=list(record["scopes"]),
                         created_at=record["created_at"], last_used_at=record["last_used_at"],
                         expires_at=record["expires_at"], is_active=record["is_active"])  # fmt: skip


async def _list(request: Request, workspace_id: uuid.UUID) -> Response:
    await access.membership(request, workspace_id, p.API_KEYS_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"{SELECT} WHERE workspace_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4",
        workspace_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def _get(request: Request, workspace_id: uuid.UUID, key_id: uuid.UUID) -> Response:
    await access.membership(request, workspace_id, p.API_KEYS_READ)
    return reply(out(await _key_row(services(request).pool, workspace_id, key_id)))


async def _update(request: Request, workspace_id: uuid.UUID, key_id: uuid.UUID, data: KeyPatch) -> Response:
    actor = await access.membership(request, workspace_id, p.API_KEYS_WRITE)
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        role = await _writer_role(conn, actor)
        row = await _key_row(conn, workspace_id, key_id, lock=True)
        _check_admin_scope(role, list(row["scopes"]))
        name = row["name"] if data.name is msgspec.UNSET else data.name
        description = row["description"] if data.description is msgspec.UNSET else data.description
        names = list(row["scopes"]) if data.scopes is msgspec.UNSET else _check_scopes(role, data.scopes)
        row = await conn.fetchrow(
            f"UPDATE api_keys SET name = $3, scopes = $4, description = $5 WHERE id = $1 AND workspace_id = $2 "
            f"RETURNING {COLUMNS}",
            key_id,
            workspace_id,
            name,
            names,
            description,
        )
    if row is None:
        raise not_found("API key")
    await apikeys.refresh(svc.pool, svc.redis, svc.keys, [row["key_hash"]])
    return reply(out(row))


async def _revoke(request: Request, workspace_id: uuid.UUID, key_id: uuid.UUID) -> Response:
    actor = await access.membership(request, workspace_id, p.API_KEYS_WRITE)
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        row = await _key_row(conn, workspace_id, key_id, lock=True)
        _check_admin_scope(await _writer_role(conn, actor), list(row["scopes"]))
        await conn.execute(
            "UPDATE api_keys SET is_active = false, revoked_at = coalesce(revoked_at, now()) WHERE id = $1", key_id
        )
    await apikeys.refresh(svc.pool, svc.redis, svc.keys, [row["key_hash"]])  # after commit: edges read the new state
    return no_content()


async def _rotate(request: Request, workspace_id: uuid.UUID, key_id: uuid.UUID, data: RotateIn) -> Response:
    """A new key with the same name, scopes and expiry; the old one stops now or after `grace_seconds`.
    A key is rotated once (409 KEY_ALREADY_ROTATED after), and a key in its grace period counts against
    the plan's key limit, so chained rotations cannot multiply the active keys."""
    actor = await access.membership(request, workspace_id, p.API_KEYS_WRITE)
    svc = services(request)
    grace = math.ceil(data.grace_seconds)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, plan):
        old = await _key_row(conn, workspace_id, key_id, lock=True)
        _check_admin_scope(await _writer_role(conn, actor), list(old["scopes"]))
        if old["replaced_by"] is not None:
            raise ApiError(409, "KEY_ALREADY_ROTATED", "This key was replaced already; rotate its replacement",
                           {"replaced_by": str(old["replaced_by"])})  # fmt: skip
        if not old["active"]:
            raise conflict("This key is revoked or expired; create a new one instead")
        await limits.check_key_room(conn, plan, workspace_id, freed=1 if grace == 0 else 0)
        record, plaintext = await tenants.create_api_key(conn, workspace_id=str(workspace_id), name=old["name"],
                                                         scope_names=list(old["scopes"]), expires_at=old["expires_at"],
                                                         created_by=str(actor.user.id),
                                                         description=old["description"])  # fmt: skip
        stops_at = await conn.fetchval(
            "UPDATE api_keys SET replaced_by = $3, "
            "revoked_at = CASE WHEN $2 = 0 THEN now() END, is_active = $2 > 0, "
            "expires_at = CASE WHEN $2 = 0 THEN expires_at "
            "  ELSE least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $2)) END "
            "WHERE id = $1 RETURNING coalesce(revoked_at, expires_at)",
            key_id,
            grace,
            uuid.UUID(record["id"]),
        )
    await apikeys.refresh(svc.pool, svc.redis, svc.keys, [old["key_hash"]])
    made = created(record, plaintext)
    fields = {f: getattr(made, f) for f in made.__struct_fields__}
    return reply(RotatedOut(**fields, replaced_key_id=key_id, replaced_key_expires_at=stops_at))


# Workspace-scoped routes ---------------------------------------------------------------------------------
def _ids(request: Request) -> tuple[uuid.UUID, uuid.UUID]:
    return path_uuid(request, "workspace_id"), path_uuid(request, "key_id")


async def create(request: Request) -> Response:
    return await _create(request, path_uuid(request, "workspace_id"), await body(request, KeyIn))


async def list_keys(request: Request) -> Response:
    return await _list(request, path_uuid(request, "workspace_id"))


async def get(request: Request) -> Response:
    return await _get(request, *_ids(request))


async def update(request: Request) -> Response:
    return await _update(request, *_ids(request), await body(request, KeyPatch))


async def revoke(request: Request) -> Response:
    return await _revoke(request, *_ids(request))


async def rotate(request: Request) -> Response:
    return await _rotate(request, *_ids(request), await body(request, RotateIn))


# Older-style routes: /api/v1/api-keys ---------------------------------------------------------------------
async def _workspace_of(request: Request, given: uuid.UUID | None) -> uuid.UUID:
    who = await access.user(request)
    return await workspaces.only_workspace(services(request), who.id, given or query_uuid(request, "workspace_id"))


async def _workspace_of_key(request: Request, key_id: uuid.UUID, given: uuid.UUID | None) -> uuid.UUID:
    """The workspace of a key the caller can see (a member of its workspace); 404 otherwise."""
    who = await access.user(request)
    given = given or query_uuid(request, "workspace_id")
    workspace_id: uuid.UUID | None = await services(request).pool.fetchval(
        "SELECT k.workspace_id FROM api_keys k "
        "JOIN workspace_members m ON m.workspace_id = k.workspace_id AND m.user_id = $2 WHERE k.id = $1",
        key_id,
        who.id,
    )
    if workspace_id is None or (given is not None and given != workspace_id):
        raise not_found("API key")
    return workspace_id


async def legacy_create(request: Request) -> Response:
    data = await body(request, LegacyKeyIn)
    return await _create(request, await _workspace_of(request, data.workspace_id), data)


async def legacy_list(request: Request) -> Response:
    return await _list(request, await _workspace_of(request, None))


async def legacy_get(request: Request) -> Response:
    key_id = path_uuid(request, "key_id")
    return await _get(request, await _workspace_of_key(request, key_id, None), key_id)


async def legacy_update(request: Request) -> Response:
    key_id = path_uuid(request, "key_id")
    data = await body(request, LegacyKeyPatch)
    return await _update(request, await _workspace_of_key(request, key_id, data.workspace_id), key_id, data)


async def legacy_revoke(request: Request) -> Response:
    key_id = path_uuid(request, "key_id")
    return await _revoke(request, await _workspace_of_key(request, key_id, None), key_id)


async def legacy_rotate(request: Request) -> Response:
    key_id = path_uuid(request, "key_id")
    data = await body(request, LegacyRotateIn)
    return await _rotate(request, await _workspace_of_key(request, key_id, data.workspace_id), key_id, data)


WS = "/api/v1/workspaces/{workspace_id:uuid}/api-keys"
OLD = "/api/v1/api-keys"
KEY = "/{key_id:uuid}"
_E = (400, 401, 403, 404)
_PAGE = ("limit", "cursor")
_OLD_Q = ("workspace_id",)
ENDPOINTS = [
    Endpoint("POST", WS, create, "Create a key; the plaintext is shown once", KeyIn, KeyCreatedOut, 201, errors=_E),
    Endpoint("GET", WS, list_keys, "A workspace's keys (no secrets)", None, Page[KeyOut], query=_PAGE, errors=_E),
    Endpoint("GET", WS + KEY, get, "One key (no secret)", None, KeyOut, errors=_E),
    Endpoint("PUT", WS + KEY, update, "Rename a key or change its scopes", KeyPatch, KeyOut, errors=_E),
    Endpoint("DELETE", WS + KEY, revoke, "Revoke a key (edges refuse it within 1 s)", None, None, 204, errors=_E),
    Endpoint("POST", WS + KEY + "/rotate", rotate, "Replace a key; the old one stops now or after a grace period",
             RotateIn, RotatedOut, errors=(*_E, 409)),
    Endpoint("POST", OLD, legacy_create, "Create a key (workspace from body, or my only one)", LegacyKeyIn,
             KeyCreatedOut, 201, query=_OLD_Q, errors=_E),
    Endpoint("GET", OLD, legacy_list, "List keys (workspace from query, or my only one)", None, Page[KeyOut],
             query=(*_OLD_Q, *_PAGE), errors=_E),
    Endpoint("GET", OLD + KEY, legacy_get, "One key", None, KeyOut, query=_OLD_Q, errors=_E),
    Endpoint("PUT", OLD + KEY, legacy_update, "Rename or re-scope a key", LegacyKeyPatch, KeyOut, query=_OLD_Q,
             errors=_E),
    Endpoint("DELETE", OLD + KEY, legacy_revoke, "Revoke a key", None, None, 204, query=_OLD_Q, errors=_E),
    Endpoint("POST", OLD + KEY + "/rotate", legacy_rotate, "Rotate a key", LegacyRotateIn, RotatedOut,
             query=_OLD_Q, errors=(*_E, 409)),
]  # fmt: skip
