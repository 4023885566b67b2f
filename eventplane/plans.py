"""Plans: what each workspace plan allows. The one table of limits (docs/api.md copies it)."""

from __future__ import annotations

import msgspec


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A plan's limits and entitlements. Counts are maxima; `api_access` allows creating API keys."""

    max_experiments: int
    max_feature_flags: int
    max_members: int
    max_api_keys: int  # keys active at once (not revoked, not expired)
    api_access: bool


PLANS: dict[str, Plan] = {
    "free": Plan(max_experiments=10, max_feature_flags=50, max_members=5, max_api_keys=3, api_access=True),
    "pro": Plan(max_experiments=100, max_feature_flags=500, max_members=50, max_api_keys=25, api_access=True),
    "enterprise": Plan(
        max_experiments=1000, max_feature_flags=5000, max_members=1000, max_api_keys=250, api_access=True
    ),
}
DEFAULT = "free"

# A plan name an operator set in the database that this code does not know grants nothing (deny by default).
UNKNOWN = Plan(max_experiments=0, max_feature_flags=0, max_members=0, max_api_keys=0, api_access=False)


def get(name: str) -> Plan:
    return PLANS.get(name, UNKNOWN)
