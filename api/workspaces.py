"""Workspaces: create, list mine, read, update, archive/restore, delete; and the API key's own workspace."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import access, limits
from api import permissions as p
from api.errors import auth_error, conflict, forbidden, not_found
from api.permissions import Role
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import Services, services
from api.wire import Page, WorkspaceIn, WorkspaceOut, WorkspacePatch
from eventplane import apikeys, plans, tenants
from eventplane.errors import ApiError, validation

ID = "/api/v1/workspaces/{workspace_id:uuid}"


def out(row: Any, role: Role | None = None) -> WorkspaceOut:
    """The workspace; with `role` (a session's reads), also that role and the permissions it grants."""
    plan = plans.get(row["plan"])
    return WorkspaceOut(
        id=uuid.UUID(str(row["id"])),
        name=row["name"],
        slug=row["slug"],
        description=row["description"],
        plan=row["plan"],
        is_active=row["is_active"],
        max_experiments=plan.max_experiments,
        max_feature_flags=plan.max_feature_flags,
        max_members=plan.max_members,
        max_api_keys=plan.max_api_keys,
        limits=plan,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        role=msgspec.UNSET if role is None else role,
        permissions=msgspec.UNSET if role is None else sorted(p.PERMISSIONS[role]),
    )


def check_admin_token(request: Request) -> None:
    """With ADMIN_TOKEN set, creating workspaces and changing plans also need `x-admin-token`."""
    expected = services(request).settings.admin_token
    if expected is None:
        return
    given = request.headers.get("x-admin-token", "")
    if not hmac.compare_digest(given.encode(), str(expected).encode()):
        raise auth_error("This server requires the 'x-admin-token' header for this operation")


def check_plan(request: Request, plan: str) -> None:
    """A plan is the operator's decision: anyone may name the default plan; any other needs x-admin-token,
    and without ADMIN_TOKEN configured it is refused (the operator runs `eventplane workspace set-plan`)."""
    if plan == plans.DEFAULT:
        return
    if services(request).settings.admin_token is None:
        raise ApiError(403, "PLAN_CHANGE_FORBIDDEN",
                       f"Only the operator sets the plan '{plan}': ask them to run "
                       f"`eventplane workspace set-plan <slug> {plan}` (or to configure ADMIN_TOKEN)",
                       {"plan": plan, "allowed": plans.DEFAULT})  # fmt: skip
    check_admin_token(request)


def check_instance(request: Request, instance: str | None) -> None:
    """Placement is the operator's: naming an instance needs x-admin-token (refused without ADMIN_TOKEN)."""
    if instance is None:
        return
    if services(request).settings.admin_token is None:
        raise ApiError(403, "INSTANCE_CHOICE_FORBIDDEN", "Only the operator places a workspace on a named "
                       "instance (configure ADMIN_TOKEN and send x-admin-token)", {"field": "instance"})  # fmt: skip
    check_admin_token(request)


async def create(request: Request) -> Response:
    who = await access.user(request)
    access.require_verified(request, who)
    check_admin_token(request)
    data = await body(request, WorkspaceIn)
    check_plan(request, data.plan)
    check_instance(request, data.instance)
    svc = services(request)
    async with svc.pool.acquire() as conn, conn.transaction():
        await limits.check_workspace_room(conn, who.id, svc.settings.max_workspaces_per_user)
        try:
            row = await tenants.create_workspace(
                conn,
                name=data.name,
                slug=data.slug,
                description=data.description,
                plan=data.plan,
                instance=data.instance,
            )
        except asyncpg.UniqueViolationError:
            raise conflict(f"A workspace with slug '{data.slug}' exists already", {"field": "slug"}) from None
        await conn.execute(
            "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'OWNER')", row["id"], who.id
        )
        await conn.execute("INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, 'OWNER')",
                           uuid.UUID(row["org_id"]), who.id)  # fmt: skip
    return reply(out(row), 201)


async def list_mine(request: Request) -> Response:
    who = await access.user(request)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"SELECT w.*, r.role AS caller_role FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id "
        f"CROSS JOIN LATERAL ({access.role_query('w.id', '$1')}) r "
        "WHERE m.user_id = $1 AND (w.created_at, w.id) > ($2, $3) ORDER BY w.created_at, w.id LIMIT $4",
        who.id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, lambda row: out(row, Role(row["caller_role"])))


async def get(request: Request) -> Response:
    """To a session, with its role here and the permissions that role grants (api/permissions.py)."""
    row, role = await access.workspace_and_role(request, path_uuid(request, "workspace_id"), p.WORKSPACE_READ)
    return reply(out(row, role))


async def only_workspace(svc: Services, user_id: uuid.UUID, given: uuid.UUID | None) -> uuid.UUID:
    """`given`, or else the caller's only workspace (400 when they have several, 404 when none)."""
    if given is not None:
        return given
    ids = await svc.pool.fetch("SELECT workspace_id FROM workspace_members WHERE user_id = $1 LIMIT 2", user_id)
    if not ids:
        raise not_found("workspace")
    if len(ids) > 1:
        raise validation("You belong to several workspaces: name one with 'workspace_id'", "workspace_id",
                         "WORKSPACE_AMBIGUOUS")  # fmt: skip
    workspace_id: uuid.UUID = ids[0]["workspace_id"]
    return workspace_id


async def current(request: Request) -> Response:
    """An API key's workspace, whatever the key's scopes (it is how a user checks which workspace a key
    belongs to); for a session, the user's only workspace."""
    who = await access.caller(request)
    if isinstance(who, access.User):
        workspace_id = await only_workspace(services(request), who.id, None)
        member = await access.membership(request, workspace_id, p.WORKSPACE_READ, who)
        return reply(out(member.workspace, member.role))
    row = await services(request).pool.fetchrow("SELECT * FROM workspaces WHERE id = $1", who.workspace_id)
    if row is None:
        raise not_found("workspace")
    return reply(out(row))


_PATCHABLE = ("name", "slug", "description", "plan")


async def update(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    member = await access.membership(request, workspace_id, p.WORKSPACE_UPDATE)
    data = await body(request, WorkspacePatch)
    changes = {f: getattr(data, f) for f in _PATCHABLE if getattr(data, f) is not msgspec.UNSET}
    if "plan" in changes:
        if member.role is not Role.OWNER:
            raise forbidden("Only an OWNER can change the plan")
        check_admin_token(request)
        check_plan(request, changes["plan"])
    if not changes:
        return reply(out(member.workspace))
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    try:
        row = await services(request).pool.fetchrow(
            f"UPDATE workspaces SET {sets}, updated_at = now() WHERE id = $1 RETURNING *",
            workspace_id,
            *changes.values(),
        )
    except asyncpg.UniqueViolationError:
        raise conflict("A workspace with this slug exists already", {"field": "slug"}) from None
    if row is None:
        raise not_found("workspace")
    if "plan" in changes:  # the org's plan, so its every workspace's; as for archive, edges know within a second
        svc = services(request)
        await tenants.set_plan(svc.pool, svc.redis, svc.keys, row["slug"], changes["plan"])
    return reply(out(row))


async def _key_hashes(svc: Services, workspace_id: uuid.UUID) -> list[str]:
    return await tenants.key_hashes(svc.pool, workspace_id)


async def set_active(svc: Services, workspace_id: uuid.UUID, active: bool) -> asyncpg.Record:
    """Archive (False) or restore (True) a workspace; every edge learns within a second: its keys answer
    403 WORKSPACE_ARCHIVED, or work again."""
    row = await svc.pool.fetchrow(
        "UPDATE workspaces SET is_active = $2, updated_at = now() WHERE id = $1 RETURNING *", workspace_id, active
    )
    if row is None:
        raise not_found("workspace")
    await apikeys.refresh(svc.pool, svc.redis, svc.keys, await _key_hashes(svc, workspace_id))
    return row


async def _set_active(request: Request, active: bool) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.membership(request, workspace_id, p.WORKSPACE_UPDATE)
    return reply(out(await set_active(services(request), workspace_id, active)))


async def archive(request: Request) -> Response:
    return await _set_active(request, False)


async def restore(request: Request) -> Response:
    return await _set_active(request, True)


async def delete(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.membership(request, workspace_id, p.WORKSPACE_DELETE)
    svc = services(request)
    hashes = await _key_hashes(svc, workspace_id)
    await svc.pool.execute("DELETE FROM workspaces WHERE id = $1", workspace_id)
    await apikeys.refresh(svc.pool, svc.redis, svc.keys, hashes)  # now unknown keys: 401 at the edge
    return no_content()


_E = (400, 401, 403, 404)
ENDPOINTS = [
    Endpoint("POST", "/api/v1/workspaces", create, "Create a workspace (the caller becomes OWNER)",
             WorkspaceIn, WorkspaceOut, 201, errors=(400, 401, 403, 409)),
    Endpoint("GET", "/api/v1/workspaces", list_mine, "The workspaces I belong to", None, Page[WorkspaceOut],
             query=("limit", "cursor"), errors=(400, 401, 403)),
    Endpoint("GET", "/api/v1/workspaces/current", current, "An API key's workspace (or my only one)", None,
             WorkspaceOut, auth="session_or_key", errors=_E),
    Endpoint("GET", ID, get, "A workspace", None, WorkspaceOut, auth="session_or_key", errors=_E),
    Endpoint("PATCH", ID, update, "Rename, re-slug, describe (or change plan: OWNER)", WorkspacePatch, WorkspaceOut,
             errors=(*_E, 409)),
    Endpoint("DELETE", ID, delete, "Delete a workspace and everything in it (OWNER)", None, None, 204, errors=_E),
    Endpoint("POST", f"{ID}/archive", archive, "Archive: data kept, keys refused at the edge (403)", None,
             WorkspaceOut, errors=_E),
    Endpoint("POST", f"{ID}/restore", restore, "Restore an archived workspace", None, WorkspaceOut, errors=_E),
]  # fmt: skip
