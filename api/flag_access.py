"""Who is changing flags and experiments, and whether they may: a member by role, or an API key of the
workspace by scope (api/permissions.py). The actor is what the audit log records."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from api import access, members
from api import permissions as p
from api.errors import auth_error, forbidden, not_found
from api.limits import ACTIVE_KEY, Conn
from eventplane.errors import ApiError

KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")  # the slug rules of flag and experiment keys


def path_key(request: Request, name: str, what: str) -> str:
    """A flag or experiment key from the path; one that breaks the slug rules names nothing (404)."""
    key: str = request.path_params[name]
    if KEY.fullmatch(key) is None:
        raise not_found(what)
    return key


@dataclass(frozen=True)
class Actor:
    workspace_id: uuid.UUID
    user_id: uuid.UUID | None
    key_id: uuid.UUID | None
    member: access.Membership | None
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if self.may(permission):
            return
        if self.member is not None:
            raise forbidden(f"Your role ({self.member.role.value}) lacks the permission '{permission}'",
                            {"required": permission})  # fmt: skip
        raise ApiError(403, "INSUFFICIENT_SCOPE", f"API key's scopes do not allow '{permission}'",
                       {"required": permission})  # fmt: skip

    async def recheck(self, conn: Conn, permission: str) -> None:
        """Under the workspace lock: the member's role, or the key, read again (either may have changed
        since the request began)."""
        if self.member is not None:
            role = await members.role_now(conn, self.member)
            if not p.allows(role, permission):
                raise forbidden(f"Your role ({role.value}) lacks the permission '{permission}'",
                                {"required": permission})  # fmt: skip
        elif not await conn.fetchval(f"SELECT {ACTIVE_KEY} FROM api_keys WHERE id = $1", self.key_id):
            raise auth_error("API key is unknown, revoked or expired")


async def actor(request: Request, workspace_id: uuid.UUID, permission: str | None) -> Actor:
    """The caller in this workspace, who must hold `permission` when given (a workspace they cannot see is 404)."""
    who = await access.caller(request)
    if isinstance(who, access.User):
        member = await access.membership(request, workspace_id, p.WORKSPACE_READ, who)
        found = Actor(workspace_id, who.id, None, member, p.PERMISSIONS[member.role])
    else:
        if who.workspace_id != workspace_id:
            raise not_found("workspace")
        granted = frozenset().union(*(p.KEY_SCOPE_PERMISSIONS.get(s, frozenset()) for s in who.scopes))
        found = Actor(workspace_id, None, who.id, None, granted)
    if permission is not None:
        found.require(permission)
    return found
