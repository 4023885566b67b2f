"""Who calls an org endpoint: a user with a session, by their org role, or an org token, by its scopes.

Org tokens (`Authorization: Bearer epo_...`) work only here; an org the caller is not in is 404, exactly as
if it did not exist, and one they are in without the permission is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

import asyncpg
from starlette.requests import Request

from api import access
from api import org_permissions as op
from api.errors import auth_error, forbidden, not_found
from api.org_permissions import OrgRole
from api.state import services
from eventplane.errors import ApiError

TOKEN_PREFIX = access.ORG_TOKEN_PREFIX


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class OrgCaller:
    """A user (role set) or an org token (token_id, scopes set), acting in `org_id`."""

    org_id: uuid.UUID
    user_id: uuid.UUID | None
    token_id: uuid.UUID | None
    role: OrgRole | None
    scopes: frozenset[str]

    def may(self, permission: str) -> bool:
        if self.role is not None:
            return op.allows(self.role, permission)
        return op.token_allows(self.scopes, permission)

    def require(self, permission: str) -> None:
        if self.may(permission):
            return
        if self.role is not None:
            raise forbidden(f"Your org role ({self.role.value}) lacks the permission '{permission}'",
                            {"required": permission})  # fmt: skip
        raise ApiError(403, "INSUFFICIENT_SCOPE", f"The org token's scopes do not allow '{permission}'",
                       {"required": permission})  # fmt: skip


def org_token_of(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential.startswith(TOKEN_PREFIX):
        return credential
    return None


async def _token(request: Request, token: str) -> asyncpg.Record:
    pool = services(request).pool
    row = await pool.fetchrow(
        "UPDATE org_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL "
        "RETURNING id, org_id, scopes, token_hash",
        token_hash(token),
    )
    # The lookup is by hash; the comparison after it keeps the check constant-time on the secret part.
    if row is None or not hmac.compare_digest(row["token_hash"], token_hash(token)):
        raise auth_error("The org token is unknown or revoked")
    return row


async def caller(request: Request, org_id: uuid.UUID, permission: str) -> OrgCaller:
    """The caller in org `org_id`, who must hold `permission`."""
    token = org_token_of(request)
    if token is not None:
        row = await _token(request, token)
        if row["org_id"] != org_id:
            raise not_found("org")
        found = OrgCaller(org_id, None, row["id"], None, frozenset(row["scopes"]))
    else:
        who = await access.user(request)
        role = await services(request).pool.fetchval(
            "SELECT m.role FROM org_members m WHERE m.org_id = $1 AND m.user_id = $2", org_id, who.id
        )
        if role is None:
            raise not_found("org")
        found = OrgCaller(org_id, who.id, None, OrgRole(role), frozenset())
    found.require(permission)
    return found


async def for_workspace(request: Request, workspace_id: uuid.UUID, permission: str) -> tuple[OrgCaller, asyncpg.Record]:
    """The caller in the org of `workspace_id` (404 when they cannot see the org), and the workspace row."""
    row = await services(request).pool.fetchrow("SELECT * FROM workspaces WHERE id = $1", workspace_id)
    if row is None:
        raise not_found("workspace")
    try:
        return await caller(request, row["org_id"], permission), row
    except ApiError as exc:
        if exc.status == 404:
            raise not_found("workspace") from None
        raise
