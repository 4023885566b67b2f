"""Plans: what each workspace plan allows. The one table of limits (docs/api.md copies it)."""

from __future__ import annotations

import msgspec


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A plan's limits and entitlements. Counts are maxima; without `api_access` the workspace can neither
    create keys nor use the ones it has (403 PLAN_SUSPENDED). A workspace may send `events_per_second`
    sustained and `burst` at once (a token bucket shared by every edge); burst is at least one full batch."""

    max_experiments: int
    max_feature_flags: int
    max_members: int
    max_api_keys: int  # keys active at once (not revoked, not expired)
    api_access: bool
    events_per_second: int = 0
    burst: int = 0


PLANS: dict[str, Plan] = {
    "free": Plan(
        max_experiments=10, max_feature_flags=50, max_members=5, max_api_keys=3, api_access=True,
        events_per_second=1_000, burst=20_000,
    ),
    "pro": Plan(
        max_experiments=100, max_feature_flags=500, max_members=50, max_api_keys=25, api_access=True,
        events_per_second=10_000, burst=200_000,
    ),
    "enterprise": Plan(
        max_experiments=1000, max_feature_flags=5000, max_members=1000, max_api_keys=250, api_access=True,
        events_per_second=100_000, burst=2_000_000,
    ),
}  # fmt: skip
DEFAULT = "free"

# A plan name an operator set in the database that this code does not know grants nothing (deny by default).
UNKNOWN = Plan(max_experiments=0, max_feature_flags=0, max_members=0, max_api_keys=0, api_access=False)


def get(name: str) -> Plan:
    return PLANS.get(name, UNKNOWN)


# Workspaces one org may hold, by the org's plan (the plans' other limits count per workspace).
MAX_WORKSPACES: dict[str, int] = {"free": 5, "pro": 50, "enterprise": 1000}


def max_workspaces(name: str) -> int:
    return MAX_WORKSPACES.get(name, 0)
