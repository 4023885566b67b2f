"""Organizations: create (the caller becomes OWNER), list mine, read, rename or change plan, delete; and
their members with org roles. The org's plan is its workspaces' plan (a change reaches every edge within a
second, as `eventplane workspace set-plan` does)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import access, org_access, org_audit, workspaces
from api import org_permissions as op
from api.errors import conflict, forbidden, not_found
from api.limits import Conn
from api.org_permissions import OrgRole
from api.org_wire import OrgIn, OrgMemberIn, OrgMemberOut, OrgMemberPatch, OrgOut, OrgPatch
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import Page
from eventplane import apikeys, plans
from eventplane.errors import ApiError

ID = "/api/v1/orgs/{org_id:uuid}"
_ORG = "SELECT o.*, (SELECT count(*) FROM workspaces w WHERE w.org_id = o.id) AS workspaces FROM orgs o"


def out(row: Any) -> OrgOut:
    return OrgOut(id=row["id"], name=row["name"], plan=row["plan"], limits=plans.get(row["plan"]),
                  max_workspaces=plans.max_workspaces(row["plan"]), workspaces=row["workspaces"],
                  created_at=row["created_at"], updated_at=row["updated_at"])  # fmt: skip


def _snapshot(row: Any) -> dict[str, Any]:
    return {"name": row["name"], "plan": row["plan"]}


async def create(request: Request) -> Response:
    who = await access.user(request)
    # An org is how workspaces are made from code: the same gates as POST /workspaces.
    access.require_verified(request, who)
    workspaces.check_admin_token(request)
    data = await body(request, OrgIn)
    workspaces.check_plan(request, data.plan)
    async with services(request).pool.acquire() as conn, conn.transaction():
        org_id = await conn.fetchval("INSERT INTO orgs (name, plan) VALUES ($1, $2) RETURNING id", data.name, data.plan)
        await conn.execute("INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, 'OWNER')", org_id, who.id)
        actor = org_access.OrgCaller(org_id, who.id, None, OrgRole.OWNER, frozenset())
        row = await conn.fetchrow(f"{_ORG} WHERE o.id = $1", org_id)
        await org_audit.record(conn, actor, "create", "org", str(org_id), None, _snapshot(row))
    return reply(out(row), 201)


async def list_mine(request: Request) -> Response:
    who = await access.user(request)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"{_ORG} JOIN org_members m ON m.org_id = o.id WHERE m.user_id = $1 AND (o.created_at, o.id) > ($2, $3) "
        "ORDER BY o.created_at, o.id LIMIT $4",
        who.id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def _org(conn: Conn | asyncpg.Pool, org_id: uuid.UUID, lock: bool = False) -> asyncpg.Record:
    row = await conn.fetchrow(f"{_ORG} WHERE o.id = $1{' FOR UPDATE OF o' if lock else ''}", org_id)
    if row is None:
        raise not_found("org")
    return row


async def get(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    await org_access.caller(request, org_id, op.ORG_READ)
    return reply(out(await _org(services(request).pool, org_id)))


async def update(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    actor = await org_access.caller(request, org_id, op.ORG_UPDATE)
    data = await body(request, OrgPatch)
    changes = {f: getattr(data, f) for f in ("name", "plan") if getattr(data, f) is not msgspec.UNSET}
    if "plan" in changes:
        if actor.role is not OrgRole.OWNER:
            raise forbidden("Only an org OWNER can change the plan")
        workspaces.check_admin_token(request)
        workspaces.check_plan(request, changes["plan"])
    svc = services(request)
    async with svc.pool.acquire() as conn, conn.transaction():
        before = await _org(conn, org_id, lock=True)
        if changes:
            sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
            await conn.execute(f"UPDATE orgs SET {sets}, updated_at = now() WHERE id = $1", org_id, *changes.values())
            if "plan" in changes:
                await conn.execute("UPDATE workspaces SET plan = $2, updated_at = now() WHERE org_id = $1", org_id,
                                   changes["plan"])  # fmt: skip
            await org_audit.record(conn, actor, "update", "org", str(org_id), _snapshot(before),
                                   _snapshot({**_snapshot(before), **changes}))  # fmt: skip
        row = await _org(conn, org_id)
    if "plan" in changes:
        hashes = await svc.pool.fetch(
            "SELECT k.key_hash FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE w.org_id = $1", org_id
        )
        await apikeys.refresh(svc.pool, svc.redis, svc.keys, [h["key_hash"] for h in hashes])
    return reply(out(row))


async def delete(request: Request) -> Response:
    """Only an org without workspaces can be deleted (archive or delete them first): nothing goes by accident."""
    org_id = path_uuid(request, "org_id")
    await org_access.caller(request, org_id, op.ORG_DELETE)
    async with services(request).pool.acquire() as conn, conn.transaction():
        row = await _org(conn, org_id, lock=True)
        if row["workspaces"]:
            raise ApiError(409, "ORG_NOT_EMPTY", f"The org still has {row['workspaces']} workspace(s); delete them "
                           "first (DELETE /api/v1/workspaces/{id})", {"workspaces": row["workspaces"]})  # fmt: skip
        await conn.execute("DELETE FROM orgs WHERE id = $1", org_id)
    return no_content()


# Members -------------------------------------------------------------------------------------------------
MEMBER_SELECT = (
    "SELECT m.id, m.user_id, u.email, m.role, m.created_at FROM org_members m JOIN users u ON u.id = m.user_id"
)


def member_out(row: Any) -> OrgMemberOut:
    return OrgMemberOut(id=row["id"], user_id=row["user_id"], email=row["email"], role=OrgRole(row["role"]),
                        joined_at=row["created_at"])  # fmt: skip


async def list_members(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    await org_access.caller(request, org_id, op.ORG_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"{MEMBER_SELECT} WHERE m.org_id = $1 AND (m.created_at, m.id) > ($2, $3) ORDER BY m.created_at, m.id LIMIT $4",
        org_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, member_out)


def check_grant(actor: org_access.OrgCaller, role: OrgRole) -> None:
    """Nobody grants an org role above their own: only an OWNER grants OWNER."""
    if actor.role is None or not actor.role.at_least(role):
        raise forbidden(f"You cannot grant the org role {role.value}", {"role": role.value})


async def add_member(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    actor = await org_access.caller(request, org_id, op.ORG_MEMBERS)
    data = await body(request, OrgMemberIn)
    check_grant(actor, data.role)
    async with services(request).pool.acquire() as conn, conn.transaction():
        await _org(conn, org_id, lock=True)
        if not await conn.fetchval("SELECT true FROM users WHERE id = $1", data.user_id):
            raise not_found("user")
        try:
            member_id = await conn.fetchval(
                "INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, $3) RETURNING id",
                org_id,
                data.user_id,
                data.role.value,
            )
        except asyncpg.UniqueViolationError:
            raise conflict("This user is a member of the org already") from None
        row = await conn.fetchrow(f"{MEMBER_SELECT} WHERE m.id = $1", member_id)
        await org_audit.record(conn, actor, "create", "org_member", str(data.user_id), None, {"role": data.role})
    return reply(member_out(row), 201)


async def _target(conn: Conn, actor: org_access.OrgCaller, org_id: uuid.UUID, member_id: uuid.UUID) -> asyncpg.Record:
    row = await conn.fetchrow(f"{MEMBER_SELECT} WHERE m.org_id = $1 AND m.id = $2 FOR UPDATE OF m", org_id, member_id)
    if row is None:
        raise not_found("member")
    if row["user_id"] == actor.user_id:
        raise forbidden("Nobody changes their own org role or removes themselves this way")
    check_grant(actor, OrgRole(row["role"]))
    return row


async def _check_owner_left(conn: Conn, org_id: uuid.UUID, row: Any) -> None:
    if (
        row["role"] == OrgRole.OWNER
        and await conn.fetchval("SELECT count(*) FROM org_members WHERE org_id = $1 AND role = 'OWNER'", org_id) <= 1
    ):
        raise ApiError(400, "LAST_OWNER", "The org's last OWNER cannot be removed or demoted; grant OWNER to "
                       "another member first")  # fmt: skip


async def update_member(request: Request) -> Response:
    org_id, member_id = path_uuid(request, "org_id"), path_uuid(request, "member_id")
    actor = await org_access.caller(request, org_id, op.ORG_MEMBERS)
    data = await body(request, OrgMemberPatch)
    check_grant(actor, data.role)
    async with services(request).pool.acquire() as conn, conn.transaction():
        await _org(conn, org_id, lock=True)
        row = await _target(conn, actor, org_id, member_id)
        if data.role is not OrgRole.OWNER:
            await _check_owner_left(conn, org_id, row)
        await conn.execute("UPDATE org_members SET role = $2 WHERE id = $1", member_id, data.role.value)
        await org_audit.record(conn, actor, "update", "org_member", str(row["user_id"]), {"role": row["role"]},
                               {"role": data.role})  # fmt: skip
        changed = await conn.fetchrow(f"{MEMBER_SELECT} WHERE m.id = $1", member_id)
    return reply(member_out(changed))


async def remove_member(request: Request) -> Response:
    org_id, member_id = path_uuid(request, "org_id"), path_uuid(request, "member_id")
    actor = await org_access.caller(request, org_id, op.ORG_MEMBERS)
    async with services(request).pool.acquire() as conn, conn.transaction():
        await _org(conn, org_id, lock=True)
        row = await _target(conn, actor, org_id, member_id)
        await _check_owner_left(conn, org_id, row)
        await conn.execute("DELETE FROM org_members WHERE id = $1", member_id)
        await org_audit.record(conn, actor, "delete", "org_member", str(row["user_id"]), {"role": row["role"]}, None)
    return no_content()


_E = (400, 401, 403, 404)
MEMBERS = f"{ID}/members"
ENDPOINTS = [
    Endpoint("POST", "/api/v1/orgs", create, "Create an org (the caller becomes its OWNER)", OrgIn, OrgOut, 201,
             errors=(400, 401, 403)),
    Endpoint("GET", "/api/v1/orgs", list_mine, "The orgs I belong to", None, Page[OrgOut],
             query=("limit", "cursor"), errors=(400, 401, 403)),
    Endpoint("GET", ID, get, "An org (session or org token)", None, OrgOut, errors=_E),
    Endpoint("PATCH", ID, update, "Rename an org (or change its plan: OWNER)", OrgPatch, OrgOut, errors=_E),
    Endpoint("DELETE", ID, delete, "Delete an org without workspaces (OWNER)", None, None, 204, errors=(*_E, 409)),
    Endpoint("GET", MEMBERS, list_members, "The org's members", None, Page[OrgMemberOut],
             query=("limit", "cursor"), errors=_E),
    Endpoint("POST", MEMBERS, add_member, "Add a user to the org", OrgMemberIn, OrgMemberOut, 201,
             errors=(*_E, 409)),
    Endpoint("PATCH", f"{MEMBERS}/{{member_id:uuid}}", update_member, "Change a member's org role", OrgMemberPatch,
             OrgMemberOut, errors=_E),
    Endpoint("DELETE", f"{MEMBERS}/{{member_id:uuid}}", remove_member, "Remove a member from the org", None, None,
             204, errors=_E),
]  # fmt: skip
