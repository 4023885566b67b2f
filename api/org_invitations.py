"""Org invitations: the workspace invitations of api/invitations.py (token shown once, stored hashed, single
use, 7 days, re-inviting replaces) with an org as their target, accepted into the org's members."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from api import access, invitations, org_access, org_audit, orgs, ratelimit
from api import org_permissions as op
from api.errors import conflict, forbidden, not_found
from api.org_permissions import OrgRole
from api.org_wire import OrgInvitationOut, OrgInviteCreatedOut, OrgInviteIn, OrgMemberOut
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import Page

_SELECT = "SELECT id, org_id, email, role, created_at, expires_at FROM invitations"


def out(row: Any) -> OrgInvitationOut:
    return OrgInvitationOut(id=row["id"], org_id=row["org_id"], email=row["email"], role=OrgRole(row["role"]),
                            created_at=row["created_at"], expires_at=row["expires_at"])  # fmt: skip


async def create(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    actor = await org_access.caller(request, org_id, op.ORG_MEMBERS)
    data = await body(request, OrgInviteIn)
    orgs.check_grant(actor, data.role)
    svc = services(request)
    s = svc.settings
    await ratelimit.hit(svc.redis, ratelimit.bucket(s.redis_prefix, "invite-org", str(org_id)),
                        s.invite_limit_per_workspace, s.invite_window_seconds)  # fmt: skip
    assert actor.user_id is not None  # org:members is never a token's
    token = invitations.new_token()
    async with svc.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", org_id)
        if await conn.fetchval(
            "SELECT true FROM org_members m JOIN users u ON u.id = m.user_id "
            "WHERE m.org_id = $1 AND lower(u.email) = lower($2)",
            org_id,
            data.email,
        ):
            raise conflict("A user with this email is a member of the org already")
        invitation_id = await invitations.insert(conn, "org_id", org_id, data.email, data.role.value, token,
                                                 actor.user_id, s.invitation_ttl)  # fmt: skip
        row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", invitation_id)
        await org_audit.record(conn, actor, "create", "org_invitation", data.email.strip().lower(), None,
                               {"role": data.role})  # fmt: skip
    fields = out(row)
    return reply(OrgInviteCreatedOut(**{f: getattr(fields, f) for f in fields.__struct_fields__}, token=token), 201)


async def list_for_org(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    await org_access.caller(request, org_id, op.ORG_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"{_SELECT} WHERE org_id = $1 AND accepted_at IS NULL AND (created_at, id) > ($2, $3) "
        "ORDER BY created_at, id LIMIT $4",
        org_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def accept(request: Request) -> Response:
    who = await access.user(request)
    svc = services(request)
    invitation = await invitations.pending(svc.pool, "org_id", str(request.path_params["token"]))
    if invitation["email"].lower() != who.email.lower():
        raise forbidden("This invitation is for another email address")
    org_id, role = invitation["org_id"], OrgRole(invitation["role"])
    async with svc.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", org_id)
        inviter = await conn.fetchval("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2", org_id,
                                      invitation["invited_by"])  # fmt: skip
        if inviter is None or not op.allows(OrgRole(inviter), op.ORG_MEMBERS) or not OrgRole(inviter).at_least(role):
            raise forbidden(f"Whoever invited you can no longer grant {role.value} in this org; ask for a new "
                            "invitation")  # fmt: skip
        if not await conn.fetchval(
            "UPDATE invitations SET accepted_at = now() WHERE id = $1 AND accepted_at IS NULL RETURNING true",
            invitation["id"],
        ):
            raise not_found("invitation")
        try:
            member_id = await conn.fetchval(
                "INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, $3) RETURNING id",
                org_id,
                who.id,
                role.value,
            )
        except asyncpg.UniqueViolationError:
            raise conflict("You are a member of this org already") from None
        row = await conn.fetchrow(f"{orgs.MEMBER_SELECT} WHERE m.id = $1", member_id)
    return reply(orgs.member_out(row))


async def cancel(request: Request) -> Response:
    org_id, invitation_id = path_uuid(request, "org_id"), path_uuid(request, "invitation_id")
    actor = await org_access.caller(request, org_id, op.ORG_MEMBERS)
    async with services(request).pool.acquire() as conn, conn.transaction():
        email = await conn.fetchval(
            "DELETE FROM invitations WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL RETURNING email",
            invitation_id,
            org_id,
        )
        if email is None:
            raise not_found("invitation")
        await org_audit.record(conn, actor, "delete", "org_invitation", email.lower(), None, None)
    return no_content()


_E = (400, 401, 403, 404)
INVITES = "/api/v1/orgs/{org_id:uuid}/invites"
ENDPOINTS = [
    Endpoint("POST", INVITES, create, "Invite by email to the org; the token is shown once", OrgInviteIn,
             OrgInviteCreatedOut, 201, errors=(*_E, 409, 429)),
    Endpoint("GET", INVITES, list_for_org, "Pending invitations of an org", None, Page[OrgInvitationOut],
             query=("limit", "cursor"), errors=_E),
    Endpoint("DELETE", f"{INVITES}/{{invitation_id:uuid}}", cancel, "Cancel an org invitation", None, None, 204,
             errors=_E),
    Endpoint("POST", "/api/v1/orgs/invites/{token}/accept", accept,
             "Accept an org invitation (the logged-in user's email must match)", None, OrgMemberOut,
             errors=(*_E, 409, 410)),
]  # fmt: skip
