"""Who is calling, and what they may do in a workspace.

A caller is a user with a session (`Authorization: Bearer <access token>`) or an API key
(`X-API-Key`, `Authorization: Bearer ep_live_...`, or Basic auth with the key as user name;
the rules are the edge's, in `eventplane.keyauth`), or a workspace access token (`Bearer epwa_...`,
api/workspace_tokens.py), which acts as a key of its workspace. An org OWNER or ADMIN acts on every
workspace of the org as its OWNER or ADMIN. A workspace the caller does not belong to is 404, exactly as
if it did not exist; a workspace they belong to without the permission is 403. Org tokens (`epo_`) are
refused here: they work only on the org endpoints (api/org_access.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
from starlette.requests import Request

from api import sessions, workspace_tokens
from api.errors import auth_error, forbidden, not_found
from api.permissions import Role, allows, key_allows
from api.state import services
from eventplane import apikeys, keyauth
from eventplane.errors import ApiError


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    name: str
    session_id: uuid.UUID
    email_verified: bool = False


@dataclass(frozen=True)
class Key:
    id: uuid.UUID
    workspace_id: uuid.UUID
    scopes: frozenset[str]


@dataclass(frozen=True)
class Membership:
    member_id: uuid.UUID
    user: User
    role: Role
    workspace: asyncpg.Record


def _credential(request: Request) -> tuple[str, bool]:
    """(credential, is_api_key): an API key by the core's rules (eventplane.keyauth), else a session token."""
    x_api_key, authorization = request.headers.get("x-api-key"), request.headers.get("authorization")
    credential = keyauth.extract(x_api_key, authorization)
    if credential and (x_api_key or keyauth.is_key(credential)):
        return credential, True
    if credential and (authorization or "").lower().startswith("bearer "):
        return credential, False
    raise auth_error("Send 'Authorization: Bearer <access token>' (POST /api/v1/auth/login gives one)")


async def caller(request: Request) -> User | Key:
    credential, is_key = _credential(request)
    if is_key:
        return await _key(request, credential)
    if credential.startswith(workspace_tokens.PREFIX):
        return await _workspace_token(request, credential)
    return await _user(request, credential)


async def user(request: Request) -> User:
    """The logged-in user; an API key is refused (member, invitation and key management are session-only)."""
    credential, is_key = _credential(request)
    if is_key or credential.startswith(workspace_tokens.PREFIX):
        raise ApiError(403, "API_KEY_NOT_ALLOWED", "This route needs a user session, not an API key")
    return await _user(request, credential)


ORG_TOKEN_PREFIX = "epo_"


async def _user(request: Request, token: str) -> User:
    if token.startswith(ORG_TOKEN_PREFIX):
        raise ApiError(403, "ORG_TOKEN_NOT_ALLOWED", "Org tokens work only on /api/v1/orgs and "
                       "/api/v1/org-workspaces; for a workspace's own endpoints, exchange one for a workspace "
                       "access token (POST /api/v1/org-workspaces/{id}/access-token)")  # fmt: skip
    svc = services(request)
    try:
        claims = sessions.decode_access(svc.settings, token)
    except sessions.BadToken as exc:
        raise auth_error(exc.reason) from None
    row = await svc.pool.fetchrow(
        "SELECT u.id, u.email, u.name, u.email_verified_at IS NOT NULL AS verified, "
        "s.last_used_at < now() - interval '1 minute' AS stale FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL "
        "AND s.created_at + make_interval(secs => $3) > now()",
        claims.session_id,
        claims.user_id,
        svc.settings.session_max_age,
    )
    if row is None:
        raise auth_error("Session has ended; log in again")
    if row["stale"]:  # last use to the minute: one write per session a minute, not per request
        await svc.pool.execute("UPDATE sessions SET last_used_at = now() WHERE id = $1", claims.session_id)
    return User(row["id"], row["email"], row["name"], claims.session_id, row["verified"])


def require_verified(request: Request, who: User) -> None:
    """With EVENTPLANE_REQUIRE_VERIFIED_EMAIL, creating workspaces and keys needs a verified address."""
    if services(request).settings.require_verified_email and not who.email_verified:
        raise unverified()


def unverified() -> ApiError:
    return ApiError(403, "EMAIL_NOT_VERIFIED", "Verify your email address first: open the link we mailed you "
                    "(POST /api/v1/me/verify-email/resend sends a new one)")  # fmt: skip


async def _key(request: Request, plaintext: str) -> Key:
    pool = services(request).pool
    grant = await keyauth.authenticate(plaintext, lambda key_hash: apikeys.load(pool, key_hash))
    return Key(uuid.UUID(grant.key_id), uuid.UUID(grant.workspace_id), grant.scopes)


async def _workspace_token(request: Request, token: str) -> Key:
    svc = services(request)
    claims = workspace_tokens.decode(svc.settings, token)
    if claims is None:
        raise auth_error("Workspace access token is invalid or expired; get a new one")
    row = await svc.pool.fetchrow(
        "SELECT is_active, secret_generation = $2 OR (secret_generation = $2 + 1 AND previous_secret_until > now()) "
        "AS current FROM workspaces WHERE id = $1",
        claims.workspace_id,
        claims.generation,
    )
    if row is None or not row["current"]:
        raise auth_error("Workspace access token has ended (its secret was rotated); get a new one")
    if not row["is_active"]:
        raise ApiError(403, "WORKSPACE_ARCHIVED", "The workspace is archived")
    return Key(claims.token_id, claims.workspace_id, frozenset(workspace_tokens.SCOPES))


def role_query(workspace: str, user: str) -> str:
    """The query of a user's one role in a workspace (`member_id`, `role`; no row: not a member), with
    `workspace` and `user` SQL expressions: `$1` for one workspace, `w.id` in a list (api/workspaces.py), so
    the role a page is shown and the role every check uses are one rule. A member of the workspace, or an
    OWNER or ADMIN of its org (who acts as the workspace's OWNER or ADMIN); with both, the higher role (the
    workspace's own membership on a tie)."""
    return f"""
SELECT member_id, role FROM (
    SELECT m.id AS member_id, m.role, 0 AS via_org FROM workspace_members m
    WHERE m.workspace_id = {workspace} AND m.user_id = {user}
    UNION ALL
    SELECT o.id, CASE o.role WHEN 'OWNER' THEN 'OWNER' ELSE 'ADMIN' END, 1
    FROM org_members o JOIN workspaces ow ON ow.org_id = o.org_id
    WHERE ow.id = {workspace} AND o.user_id = {user} AND o.role IN ('OWNER', 'ADMIN')
) r ORDER BY array_position(ARRAY['OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER'], r.role), via_org LIMIT 1
"""


_MEMBERSHIP = (
    f"SELECT r.member_id, r.role, w.* FROM workspaces w CROSS JOIN LATERAL ({role_query('$1', '$2')}) r WHERE w.id = $1"
)

# The role behind a membership's member_id, read again (api/members.py role_now).
ROLE_NOW = """
SELECT role FROM workspace_members WHERE id = $1
UNION ALL
SELECT CASE role WHEN 'OWNER' THEN 'OWNER' ELSE 'ADMIN' END FROM org_members
WHERE id = $1 AND role IN ('OWNER', 'ADMIN')
"""


async def membership(request: Request, workspace_id: uuid.UUID, permission: str, who: User | None = None) -> Membership:
    """The session user's membership of the workspace, which must grant `permission`."""
    who = who or await user(request)
    row = await services(request).pool.fetchrow(_MEMBERSHIP, workspace_id, who.id)
    if row is None:
        raise not_found("workspace")
    role = Role(row["role"])
    if not allows(role, permission):
        raise forbidden(f"Your role ({role.value}) lacks the permission '{permission}'", {"required": permission})
    return Membership(row["member_id"], who, role, row)


async def workspace(request: Request, workspace_id: uuid.UUID, permission: str) -> asyncpg.Record:
    """The workspace row, for a member with `permission` or an API key of this workspace whose scopes grant it."""
    return (await workspace_and_role(request, workspace_id, permission))[0]


async def workspace_and_role(
    request: Request, workspace_id: uuid.UUID, permission: str
) -> tuple[asyncpg.Record, Role | None]:
    """As `workspace`, with the session user's role there (None for an API key or workspace token)."""
    who = await caller(request)
    if isinstance(who, User):
        member = await membership(request, workspace_id, permission, who)
        return member.workspace, member.role
    if who.workspace_id != workspace_id:
        raise not_found("workspace")
    require_key_permission(who, permission)
    row = await services(request).pool.fetchrow("SELECT * FROM workspaces WHERE id = $1", workspace_id)
    if row is None:
        raise not_found("workspace")
    return row, None


def require_key_permission(key: Key, permission: str) -> None:
    if not key_allows(key.scopes, permission):
        raise ApiError(403, "INSUFFICIENT_SCOPE", f"API key's scopes do not allow '{permission}'",
                       {"required": permission})  # fmt: skip
