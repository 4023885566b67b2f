"""Members and roles: list, add a user who shares a workspace with you, change a role, remove, transfer.

Rules: nobody changes their own role; nobody grants a role above their own; an ADMIN edits only members
at or below ADMIN; the last OWNER is never removed or demoted. Removing or demoting a member cancels the
invitations they sent that their new rights would not allow.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from api import access, limits
from api import permissions as p
from api.errors import conflict, forbidden, not_found
from api.limits import Conn
from api.permissions import Role
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import MemberIn, MemberOut, MemberPatch, Page, TransferIn
from eventplane.errors import ApiError

BASE = "/api/v1/workspaces/{workspace_id:uuid}/members"
MEMBER_SELECT = (
    "SELECT m.id, m.user_id, u.email, u.name, m.role, m.created_at AS joined_at, m.created_at "
    "FROM workspace_members m JOIN users u ON u.id = m.user_id"
)


def out(row: Any) -> MemberOut:
    return MemberOut(id=row["id"], user_id=row["user_id"], email=row["email"], name=row["name"],
                     role=Role(row["role"]), joined_at=row["joined_at"])  # fmt: skip


def check_grant(actor: Role, role: Role) -> None:
    """Nobody grants a role above their own (so only an OWNER grants OWNER)."""
    if not actor.at_least(role):
        raise forbidden(f"A {actor.value} cannot grant {role.value}", {"role": role.value})


async def member_row(conn: Conn | asyncpg.Pool, workspace_id: uuid.UUID, member_id: uuid.UUID) -> Any:
    row = await conn.fetchrow(f"{MEMBER_SELECT} WHERE m.workspace_id = $1 AND m.id = $2", workspace_id, member_id)
    if row is None:
        raise not_found("member")
    return row


async def _check_not_last_owner(conn: Conn, workspace_id: uuid.UUID, target: Any) -> None:
    if target["role"] != Role.OWNER.value:
        return
    owners = await conn.fetchval(
        "SELECT count(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'OWNER'", workspace_id
    )
    if owners <= 1:
        raise ApiError(400, "LAST_OWNER", "A workspace keeps at least one OWNER; transfer ownership first")


async def cancel_invitations_beyond(conn: Conn, workspace_id: uuid.UUID, user_id: uuid.UUID, role: Role | None) -> None:
    """Cancel the pending invitations `user_id` sent that their new role (None: removed) could not send."""
    may_invite = role is not None and p.allows(role, p.MEMBERS_INVITE)
    grantable = [r.value for r in Role if may_invite and role is not None and role.at_least(r)]
    await conn.execute(
        "DELETE FROM invitations WHERE workspace_id = $1 AND invited_by = $2 AND accepted_at IS NULL "
        "AND NOT (role = ANY($3::text[]))",
        workspace_id,
        user_id,
        grantable,
    )


async def _shares_a_workspace(conn: Conn, user_id: uuid.UUID, other: uuid.UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM workspace_members a JOIN workspace_members b ON b.workspace_id = a.workspace_id "
        "WHERE a.user_id = $1 AND b.user_id = $2)",
        user_id,
        other,
    ))  # fmt: skip


def use_invitation(reason: str) -> ApiError:
    return ApiError(403, "USE_INVITATION", f"{reason}: invite them by email instead (POST .../invites); they "
                    "join when they accept", {"invite": "POST /api/v1/workspaces/{workspace_id}/invites"})  # fmt: skip


async def role_now(conn: Conn, actor: access.Membership) -> Role:
    """The actor's role read again under the workspace lock (it may have changed since the request began)."""
    role = await conn.fetchval(access.ROLE_NOW, actor.member_id)
    if role is None:
        raise not_found("workspace")
    return Role(role)


async def list_members(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.membership(request, workspace_id, p.MEMBERS_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"{MEMBER_SELECT} WHERE m.workspace_id = $1 AND (m.created_at, m.id) > ($2, $3) "
        "ORDER BY m.created_at, m.id LIMIT $4",
        workspace_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def add(request: Request) -> Response:
    """Add a user directly: only one who already shares a workspace with the caller, and never as OWNER;
    anyone else joins by accepting an invitation (their consent)."""
    workspace_id = path_uuid(request, "workspace_id")
    actor = await access.membership(request, workspace_id, p.MEMBERS_INVITE)
    data = await body(request, MemberIn)
    if data.role is Role.OWNER:
        raise use_invitation(
            "Nobody is made OWNER without their consent (an OWNER may invite as OWNER, or "
            "transfer ownership to a member)"
        )
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, plan):
        role = await role_now(conn, actor)
        if not p.allows(role, p.MEMBERS_INVITE):
            raise forbidden(f"Your role ({role.value}) lacks the permission '{p.MEMBERS_INVITE}'",
                            {"required": p.MEMBERS_INVITE})  # fmt: skip
        check_grant(role, data.role)
        if not await _shares_a_workspace(conn, actor.user.id, data.user_id):
            raise use_invitation("You share no workspace with this user")
        await limits.check_member_room(conn, plan, workspace_id)
        if await conn.fetchval(
            "SELECT true FROM workspace_members WHERE workspace_id = $1 AND user_id = $2", workspace_id, data.user_id
        ):
            raise conflict("This user is a member already")
        await limits.check_workspace_room(conn, data.user_id, svc.settings.max_workspaces_per_user)
        member_id = await conn.fetchval(
            "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3) RETURNING id",
            workspace_id,
            data.user_id,
            data.role.value,
        )
        row = await member_row(conn, workspace_id, member_id)
    return reply(out(row), 201)


async def update_role(request: Request) -> Response:
    workspace_id, member_id = path_uuid(request, "workspace_id"), path_uuid(request, "member_id")
    actor = await access.membership(request, workspace_id, p.MEMBERS_UPDATE_ROLES)
    data = await body(request, MemberPatch)
    async with limits.locked_workspace(services(request).pool, workspace_id) as (conn, _):
        role = await role_now(conn, actor)
        target = await member_row(conn, workspace_id, member_id)
        if target["user_id"] == actor.user.id:
            raise forbidden("Nobody changes their own role")
        if not p.allows(role, p.MEMBERS_UPDATE_ROLES) or not role.at_least(Role(target["role"])):
            raise forbidden(f"A {role.value} cannot edit a {target['role']}")
        check_grant(role, data.role)
        if data.role is not Role.OWNER:
            await _check_not_last_owner(conn, workspace_id, target)
        await conn.execute("UPDATE workspace_members SET role = $2 WHERE id = $1", member_id, data.role.value)
        await cancel_invitations_beyond(conn, workspace_id, target["user_id"], data.role)
        row = await member_row(conn, workspace_id, member_id)
    return reply(out(row))


async def remove(request: Request) -> Response:
    """Remove a member; any member may remove themselves (leave)."""
    workspace_id, member_id = path_uuid(request, "workspace_id"), path_uuid(request, "member_id")
    actor = await access.membership(request, workspace_id, p.WORKSPACE_READ)
    async with limits.locked_workspace(services(request).pool, workspace_id) as (conn, _):
        role = await role_now(conn, actor)
        target = await member_row(conn, workspace_id, member_id)
        if target["user_id"] != actor.user.id:
            if not p.allows(role, p.MEMBERS_REMOVE):
                raise forbidden(f"Your role ({role.value}) lacks the permission '{p.MEMBERS_REMOVE}'",
                                {"required": p.MEMBERS_REMOVE})  # fmt: skip
            if not role.at_least(Role(target["role"])):
                raise forbidden(f"A {role.value} cannot remove a {target['role']}")
        await _check_not_last_owner(conn, workspace_id, target)
        await conn.execute("DELETE FROM workspace_members WHERE id = $1", member_id)
        await cancel_invitations_beyond(conn, workspace_id, target["user_id"], None)
    return no_content()


async def transfer(request: Request) -> Response:
    """Make another member OWNER; the caller (an OWNER) becomes ADMIN."""
    workspace_id = path_uuid(request, "workspace_id")
    actor = await access.membership(request, workspace_id, p.WORKSPACE_TRANSFER)
    data = await body(request, TransferIn)
    async with limits.locked_workspace(services(request).pool, workspace_id) as (conn, _):
        if not p.allows(await role_now(conn, actor), p.WORKSPACE_TRANSFER):
            raise forbidden("Only an OWNER transfers ownership")
        target = await member_row(conn, workspace_id, data.member_id)
        if target["user_id"] == actor.user.id:
            raise ApiError(400, "VALIDATION_ERROR", "You own this workspace already", {"field": "member_id"})
        await conn.execute("UPDATE workspace_members SET role = 'OWNER' WHERE id = $1", data.member_id)
        await conn.execute("UPDATE workspace_members SET role = 'ADMIN' WHERE id = $1", actor.member_id)
        await cancel_invitations_beyond(conn, workspace_id, actor.user.id, Role.ADMIN)
        row = await member_row(conn, workspace_id, data.member_id)
    return reply(out(row))


_E = (400, 401, 403, 404)
ENDPOINTS = [
    Endpoint("GET", BASE, list_members, "Members of a workspace", None, Page[MemberOut], query=("limit", "cursor"),
             errors=_E),
    Endpoint("POST", BASE, add, "Add an existing user with a role", MemberIn, MemberOut, 201, errors=(*_E, 409)),
    Endpoint("PATCH", BASE + "/{member_id:uuid}", update_role, "Change a member's role", MemberPatch, MemberOut,
             errors=_E),
    Endpoint("DELETE", BASE + "/{member_id:uuid}", remove, "Remove a member (or leave)", None, None, 204, errors=_E),
    Endpoint("POST", "/api/v1/workspaces/{workspace_id:uuid}/transfer-ownership", transfer,
             "Make a member OWNER; the caller becomes ADMIN (OWNER only)", TransferIn, MemberOut, errors=_E),
]  # fmt: skip
