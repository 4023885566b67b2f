"""Roles and what they may do: one table, deny by default (docs/api.md copies it)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    DEVELOPER = "DEVELOPER"
    VIEWER = "VIEWER"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}

WORKSPACE_READ = "workspace:read"
WORKSPACE_UPDATE = "workspace:update"  # rename, archive, restore
WORKSPACE_DELETE = "workspace:delete"
WORKSPACE_TRANSFER = "workspace:transfer"
MEMBERS_READ = "members:read"
MEMBERS_INVITE = "members:invite"
MEMBERS_UPDATE_ROLES = "members:update_roles"
MEMBERS_REMOVE = "members:remove"
BILLING_READ = "billing:read"
API_KEYS_READ = "api_keys:read"
API_KEYS_WRITE = "api_keys:write"
FLAGS_READ = "flags:read"  # incl. the audit log of flags
FLAGS_WRITE = "flags:write"  # create, change, delete
FLAGS_ROLLOUT = "flags:rollout"  # change only `rollout` and `enabled`
EXPERIMENTS_READ = "experiments:read"  # incl. results and the audit log of experiments
EXPERIMENTS_WRITE = "experiments:write"  # create, change, start/stop, re-randomize, delete
EXPERIMENTS_ALLOCATION = "experiments:allocation"  # change only `allocation`
EVENTS_READ = "events:read"  # stored events: list, export, live stream, event types
DATA_DELETE = "data:delete"  # delete one person's stored events (and refuse their future ones)
_DEFINITIONS_WRITE = frozenset({FLAGS_WRITE, FLAGS_ROLLOUT, EXPERIMENTS_WRITE, EXPERIMENTS_ALLOCATION})

_VIEWER = frozenset({WORKSPACE_READ, MEMBERS_READ, API_KEYS_READ, FLAGS_READ, EXPERIMENTS_READ, EVENTS_READ})
_DEVELOPER = _VIEWER | {API_KEYS_WRITE} | _DEFINITIONS_WRITE
_ADMIN = _DEVELOPER | {
    WORKSPACE_UPDATE, MEMBERS_INVITE, MEMBERS_UPDATE_ROLES, MEMBERS_REMOVE, BILLING_READ, DATA_DELETE,
}  # fmt: skip
_OWNER = _ADMIN | {WORKSPACE_DELETE, WORKSPACE_TRANSFER}

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.OWNER: _OWNER,
    Role.ADMIN: _ADMIN,
    Role.DEVELOPER: _DEVELOPER,
    Role.VIEWER: _VIEWER,
}
ALL = _OWNER

# What an API key may do on the management API, by scope. Member, invitation and key management are
# never granted to a key (session only); everything not listed here is refused. For CI/CD, `flags:write`
# and `experiments:write` (in the `write` bundle) change rollout percentages only; creating, other changes
# and deleting need `admin`.
KEY_SCOPE_PERMISSIONS: dict[str, frozenset[str]] = {
    "workspace:read": frozenset({WORKSPACE_READ}),
    "flags:read": frozenset({FLAGS_READ}),
    "experiments:read": frozenset({EXPERIMENTS_READ}),
    "flags:write": frozenset({FLAGS_ROLLOUT}),
    "experiments:write": frozenset({EXPERIMENTS_ALLOCATION}),
    "events:read": frozenset({EVENTS_READ}),
    "admin": frozenset({WORKSPACE_READ, BILLING_READ, FLAGS_READ, EXPERIMENTS_READ, EVENTS_READ, DATA_DELETE})
    | _DEFINITIONS_WRITE,
}


def allows(role: Role, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def key_allows(granted_scopes: frozenset[str], permission: str) -> bool:
    return any(permission in KEY_SCOPE_PERMISSIONS.get(scope, frozenset()) for scope in granted_scopes)
