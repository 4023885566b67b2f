"""Invitations: invite by email (token shown once), list, accept by the invited user, decline or cancel.

Tokens are random, stored as SHA-256, single use, and expire (EVENTPLANE_INVITATION_TTL, 7 days by
default). Re-inviting an email replaces its pending invitation. The link is mailed (outbox, same
transaction); resending makes a new token (the old link stops). Only a verified address sees or declines
the invitations sent to it; accepting needs the token, and verifies the address (it proves the mailbox).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Literal

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from api import access, limits, members, ratelimit, sessions, workspaces
from api import permissions as p
from api.errors import conflict, forbidden, not_found
from api.limits import Conn
from api.permissions import Role
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import AcceptedOut, InvitationOut, InviteCreatedOut, InviteIn, InviterOut, Page
from eventplane import mail_templates
from eventplane.errors import ApiError
from eventplane.mail import queue_mail

TOKEN_PREFIX = "epi_"
Target = Literal["workspace_id", "org_id"]
SELECT = (
    "SELECT i.id, i.workspace_id, w.name AS workspace_name, i.email, i.role, i.created_at, i.expires_at, "
    "i.invited_by, u.email AS inviter_email, u.name AS inviter_name "
    "FROM invitations i JOIN workspaces w ON w.id = i.workspace_id LEFT JOIN users u ON u.id = i.invited_by"
)


def out(row: Any) -> InvitationOut:
    inviter = None
    if row["invited_by"] is not None:
        inviter = InviterOut(id=row["invited_by"], email=row["inviter_email"], name=row["inviter_name"])
    return InvitationOut(id=row["id"], workspace_id=row["workspace_id"], workspace_name=row["workspace_name"],
                         email=row["email"], role=Role(row["role"]), created_at=row["created_at"],
                         expires_at=row["expires_at"], invited_by=inviter)  # fmt: skip


async def _mail(conn: Conn, request: Request, row: Any, token: str) -> None:
    inviter = row["inviter_name"] or row["inviter_email"] or "A colleague"
    mail = mail_templates.invitation(services(request).settings, row["email"], token, row["workspace_name"],
                                     inviter, row["role"])  # fmt: skip
    await queue_mail(conn, mail)


async def create(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    actor = await access.membership(request, workspace_id, p.MEMBERS_INVITE)
    data = await body(request, InviteIn)
    email = data.email.strip()  # one spelling for the member check, the replacement and the insert
    members.check_grant(actor.role, data.role)  # early, before counting against the rate limit
    svc = services(request)
    s = svc.settings
    await ratelimit.hit(svc.redis, ratelimit.bucket(s.redis_prefix, "invite", str(workspace_id)),
                        s.invite_limit_per_workspace, s.invite_window_seconds)  # fmt: skip
    token = new_token()
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, plan):
        role = await members.role_now(conn, actor)
        if not p.allows(role, p.MEMBERS_INVITE):
            raise forbidden(f"Your role ({role.value}) lacks the permission '{p.MEMBERS_INVITE}'",
                            {"required": p.MEMBERS_INVITE})  # fmt: skip
        members.check_grant(role, data.role)
        await limits.check_member_room(conn, plan, workspace_id)
        if await conn.fetchval(
            "SELECT true FROM workspace_members m JOIN users u ON u.id = m.user_id "
            "WHERE m.workspace_id = $1 AND lower(u.email) = lower($2)",
            workspace_id,
            email,
        ):
            raise conflict("A user with this email is a member already")
        invitation_id = await insert(conn, "workspace_id", workspace_id, email, data.role.value, token,
                                     actor.user.id, s.invitation_ttl)  # fmt: skip
        row = await conn.fetchrow(f"{SELECT} WHERE i.id = $1", invitation_id)
        await _mail(conn, request, row, token)
    return reply(InviteCreatedOut(**_fields(out(row)), token=token), 201)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def insert(conn: Conn, target: Target, target_id: uuid.UUID, email: str, role: str, token: str,
                 invited_by: uuid.UUID, ttl: int) -> uuid.UUID:  # fmt: skip
    """A pending invitation to a workspace or an org (`target` names the column), replacing this email's
    pending one there; only the token's hash is stored."""
    email = email.strip()  # one spelling for the replacement and the insert (str.strip() also strips Unicode spaces)
    await conn.execute(f"DELETE FROM invitations WHERE {target} = $1 AND lower(email) = lower($2) "
                       "AND accepted_at IS NULL", target_id, email)  # fmt: skip
    invitation_id: uuid.UUID = await conn.fetchval(
        f"INSERT INTO invitations ({target}, email, role, token_hash, invited_by, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING id",
        target_id,
        email,
        role,
        sessions.token_hash(token),
        invited_by,
        ttl,
    )
    return invitation_id


async def pending(conn: Conn | asyncpg.Pool, target: Target, token: str) -> asyncpg.Record:
    """The pending invitation to a `target` (workspace or org) with this token: 404 when none, 410 when expired."""
    invitation = await conn.fetchrow(
        f"SELECT id, workspace_id, org_id, email, role, invited_by, expires_at < now() AS expired FROM invitations "
        f"WHERE token_hash = $1 AND accepted_at IS NULL AND {target} IS NOT NULL",
        sessions.token_hash(token),
    )
    if invitation is None:
        raise not_found("invitation")
    if invitation["expired"]:
        raise ApiError(410, "INVITATION_EXPIRED", "This invitation has expired; ask for a new one")
    return invitation


async def resend(request: Request) -> Response:
    """Mail the invitation again with a new token (the previous link stops) and a fresh expiry."""
    workspace_id = path_uuid(request, "workspace_id")
    invitation_id = path_uuid(request, "invitation_id")
    actor = await access.membership(request, workspace_id, p.MEMBERS_INVITE)
    svc = services(request)
    s = svc.settings
    await ratelimit.hit(svc.redis, ratelimit.bucket(s.redis_prefix, "invite-resend", str(invitation_id)),
                        s.resend_limit_per_invitation, s.invite_window_seconds)  # fmt: skip
    await ratelimit.hit(svc.redis, ratelimit.bucket(s.redis_prefix, "invite", str(workspace_id)),
                        s.invite_limit_per_workspace, s.invite_window_seconds)  # fmt: skip
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        # The new token goes to the caller: resending is granting, so the same rule as inviting holds.
        invited = await conn.fetchval(
            "SELECT role FROM invitations WHERE id = $1 AND workspace_id = $2 AND accepted_at IS NULL",
            invitation_id,
            workspace_id,
        )
        if invited is None:
            raise not_found("invitation")
        members.check_grant(await members.role_now(conn, actor), Role(invited))
        if not await conn.fetchval(
            "UPDATE invitations SET token_hash = $3, expires_at = now() + make_interval(secs => $4) "
            "WHERE id = $1 AND workspace_id = $2 AND accepted_at IS NULL RETURNING true",
            invitation_id,
            workspace_id,
            sessions.token_hash(token),
            s.invitation_ttl,
        ):
            raise not_found("invitation")
        row = await conn.fetchrow(f"{SELECT} WHERE i.id = $1", invitation_id)
        await _mail(conn, request, row, token)
    return reply(InviteCreatedOut(**_fields(out(row)), token=token))


def _fields(invitation: InvitationOut) -> dict[str, Any]:
    return {f: getattr(invitation, f) for f in invitation.__struct_fields__}


async def list_for_workspace(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.membership(request, workspace_id, p.MEMBERS_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"{SELECT} WHERE i.workspace_id = $1 AND i.accepted_at IS NULL AND (i.created_at, i.id) > ($2, $3) "
        "ORDER BY i.created_at, i.id LIMIT $4",
        workspace_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def list_mine(request: Request) -> Response:
    """Empty until the address is verified: whoever signed up first with someone else's address must not
    see (or decline) what was sent to that person."""
    who = await access.user(request)
    limit = page_limit(request)
    position = after(cursor(request))
    if not who.email_verified:
        return reply_page([], limit, out)
    rows = await services(request).pool.fetch(
        f"{SELECT} WHERE lower(i.email) = lower($1) AND i.accepted_at IS NULL AND i.expires_at > now() "
        "AND (i.created_at, i.id) > ($2, $3) ORDER BY i.created_at, i.id LIMIT $4",
        who.email,
        *position,
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def accept(request: Request) -> Response:
    who = await access.user(request)
    svc = services(request)
    invitation = await pending(svc.pool, "workspace_id", str(request.path_params["token"]))
    if invitation["email"].lower() != who.email.lower():
        raise forbidden("This invitation is for another email address")
    workspace_id = invitation["workspace_id"]
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, plan):
        await _check_inviter(conn, invitation)
        # Single use: only one request can flip accepted_at, even when two race.
        if not await conn.fetchval(
            "UPDATE invitations SET accepted_at = now() WHERE id = $1 AND accepted_at IS NULL RETURNING true",
            invitation["id"],
        ):
            raise not_found("invitation")
        if await conn.fetchval(
            "SELECT true FROM workspace_members WHERE workspace_id = $1 AND user_id = $2", workspace_id, who.id
        ):
            raise conflict("You are a member of this workspace already")
        await limits.check_member_room(conn, plan, workspace_id)
        await limits.check_workspace_room(conn, who.id, svc.settings.max_workspaces_per_user)
        member_id = await conn.fetchval(
            "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3) RETURNING id",
            workspace_id,
            who.id,
            invitation["role"],
        )
        # Holding the token proves the mailbox: the address is verified.
        await conn.execute("UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1",
                           who.id)  # fmt: skip
        member = await members.member_row(conn, workspace_id, member_id)
        workspace = await conn.fetchrow("SELECT * FROM workspaces WHERE id = $1", workspace_id)
    return reply(AcceptedOut(workspace=workspaces.out(workspace), member=members.out(member)))


async def _check_inviter(conn: Conn, invitation: Any) -> None:
    """The inviter must still be able to send this invitation now: a member with members:invite and a role
    at or above the invited one (rights lost since then are not handed on)."""
    role = await conn.fetchval(
        "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
        invitation["workspace_id"],
        invitation["invited_by"],
    )
    invited = Role(invitation["role"])
    if role is None or not p.allows(Role(role), p.MEMBERS_INVITE) or not Role(role).at_least(invited):
        raise ApiError(403, "INVITER_LACKS_RIGHTS", f"Whoever invited you can no longer grant {invited.value} "
                       "in this workspace; ask one of its admins for a new invitation",
                       {"role": invited.value})  # fmt: skip


async def delete(request: Request) -> Response:
    """Cancel (a member who may invite) or decline (the invited user). 404 for anyone else."""
    who = await access.user(request)
    invitation_id = path_uuid(request, "invitation_id")
    pool = services(request).pool
    row = await pool.fetchrow(
        "SELECT i.email, m.role FROM invitations i "
        "LEFT JOIN workspace_members m ON m.workspace_id = i.workspace_id AND m.user_id = $2 "
        "WHERE i.id = $1 AND i.accepted_at IS NULL",
        invitation_id,
        who.id,
    )
    invited = row is not None and who.email_verified and row["email"].lower() == who.email.lower()
    may_cancel = row is not None and row["role"] is not None and p.allows(Role(row["role"]), p.MEMBERS_INVITE)
    if not (invited or may_cancel):
        if row is not None and row["role"] is not None:
            raise forbidden(f"Your role lacks the permission '{p.MEMBERS_INVITE}'", {"required": p.MEMBERS_INVITE})
        raise not_found("invitation")
    await pool.execute("DELETE FROM invitations WHERE id = $1 AND accepted_at IS NULL", invitation_id)
    return no_content()


WS = "/api/v1/workspaces/{workspace_id:uuid}"
_E = (400, 401, 403, 404)
_ACCEPT = "Accept an invitation (the logged-in user's email must match)"
ENDPOINTS = [
    Endpoint("POST", f"{WS}/invites", create, "Invite by email; the token is shown once", InviteIn,
             InviteCreatedOut, 201, errors=(*_E, 409, 429)),
    Endpoint("POST", f"{WS}/members/invite", create, "Alias of POST .../invites", InviteIn, InviteCreatedOut, 201,
             errors=(*_E, 409, 429)),
    Endpoint("POST", f"{WS}/invites/{{invitation_id:uuid}}/resend", resend, "Mail an invitation again (new token, "
             "shown once; the old link stops)", None, InviteCreatedOut, errors=(*_E, 429)),
    Endpoint("GET", f"{WS}/invites", list_for_workspace, "Pending invitations of a workspace (who invited whom)", None,
             Page[InvitationOut], query=("limit", "cursor"), errors=_E),
    Endpoint("GET", "/api/v1/workspaces/invitations/pending", list_mine, "Invitations pending for my email", None,
             Page[InvitationOut], query=("limit", "cursor"), errors=(400, 401, 403)),
    Endpoint("POST", "/api/v1/workspaces/invites/{token}/accept", accept, _ACCEPT, None, AcceptedOut,
             errors=(*_E, 409, 410)),
    Endpoint("POST", "/api/v1/workspaces/invitations/{token}/accept", accept, _ACCEPT, None, AcceptedOut,
             errors=(*_E, 409, 410)),
    Endpoint("DELETE", "/api/v1/workspaces/invitations/{invitation_id:uuid}", delete,
             "Cancel (inviter side) or decline (invited user) an invitation", None, None, 204, errors=_E),
]  # fmt: skip
