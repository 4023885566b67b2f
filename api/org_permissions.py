"""Org roles and what they may do in their org, and what each org-token scope grants: one table each,
deny by default. An org OWNER or ADMIN also acts on every workspace of the org (api/access.py)."""

from __future__ import annotations

from enum import StrEnum

from api.permissions import Role


class OrgRole(StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"

    def at_least(self, other: OrgRole) -> bool:
        return _RANK[self] >= _RANK[other]


_RANK = {OrgRole.MEMBER: 0, OrgRole.ADMIN: 1, OrgRole.OWNER: 2}

ORG_READ = "org:read"  # the org, its members, its tokens (no secrets)
ORG_UPDATE = "org:update"
ORG_DELETE = "org:delete"
ORG_MEMBERS = "org:members"  # add, change, remove members
ORG_TOKENS = "org:tokens"  # create and revoke org tokens
WORKSPACES_READ = "workspaces:read"
WORKSPACES_WRITE = "workspaces:write"  # create, configure, archive, restore
WORKSPACES_CREDENTIALS = "workspaces:credentials"  # access tokens, secret rotation

_MEMBER = frozenset({ORG_READ, WORKSPACES_READ})
_ADMIN = _MEMBER | {ORG_UPDATE, ORG_MEMBERS, ORG_TOKENS, WORKSPACES_WRITE, WORKSPACES_CREDENTIALS}
_OWNER = _ADMIN | {ORG_DELETE}
PERMISSIONS: dict[OrgRole, frozenset[str]] = {OrgRole.OWNER: _OWNER, OrgRole.ADMIN: _ADMIN, OrgRole.MEMBER: _MEMBER}

# Org tokens never manage the org itself (members, tokens, deletion): that stays with people.
TOKEN_SCOPES: dict[str, frozenset[str]] = {
    WORKSPACES_READ: frozenset({ORG_READ, WORKSPACES_READ}),
    WORKSPACES_WRITE: frozenset({WORKSPACES_WRITE}),
    WORKSPACES_CREDENTIALS: frozenset({WORKSPACES_CREDENTIALS}),
}

# The role an org member has in each workspace of the org without being a member of it.
WORKSPACE_ROLE: dict[OrgRole, Role] = {OrgRole.OWNER: Role.OWNER, OrgRole.ADMIN: Role.ADMIN}


def allows(role: OrgRole, permission: str) -> bool:
    return permission in PERMISSIONS[role]


def token_allows(scopes: frozenset[str], permission: str) -> bool:
    return any(permission in TOKEN_SCOPES.get(s, frozenset()) for s in scopes)
