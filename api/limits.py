"""Plan and per-user limits, checked under row locks so that concurrent requests cannot both pass. The plan
is the org's; members, active keys, flags and experiments are counted across the org's workspaces.

Lock order, everywhere: the workspace row, its org's row, then the user row.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from api.errors import not_found, plan_limit
from eventplane import plans
from eventplane.errors import ApiError

Conn = asyncpg.Connection | PoolConnectionProxy


@contextlib.asynccontextmanager
async def locked_workspace(pool: asyncpg.Pool, workspace_id: uuid.UUID) -> AsyncIterator[tuple[Conn, plans.Plan]]:
    """A transaction holding the locks of the workspace row and of its org's row, and the plan. The workspace's
    `plan` column mirrors its org's (tenants.set_plan writes both), and is what edges read."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT org_id, plan FROM workspaces WHERE id = $1 FOR UPDATE", workspace_id)
        if row is None:
            raise not_found("workspace")
        await conn.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", row["org_id"])
        yield conn, plans.get(row["plan"])


# The workspaces of the org of workspace $1.
_ORG_WORKSPACES = "SELECT id FROM workspaces WHERE org_id = (SELECT org_id FROM workspaces WHERE id = $1)"


# What each plan limit counts, across the org of workspace $1 (the checks below and GET .../limits share them).
MEMBERS = f"SELECT count(DISTINCT user_id) FROM workspace_members WHERE workspace_id IN ({_ORG_WORKSPACES})"
FLAGS = f"SELECT count(*) FROM feature_flags WHERE workspace_id IN ({_ORG_WORKSPACES})"
EXPERIMENTS = (  # draft and running experiments count; stopped ones do not
    f"SELECT count(*) FROM experiments WHERE workspace_id IN ({_ORG_WORKSPACES}) AND status IN ('draft', 'running')"
)
ACTIVE_KEY = "is_active AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
KEYS = f"SELECT count(*) FROM api_keys WHERE workspace_id IN ({_ORG_WORKSPACES}) AND {ACTIVE_KEY}"


async def check_member_room(conn: Conn, plan: plans.Plan, workspace_id: uuid.UUID) -> None:
    count = await conn.fetchval(MEMBERS, workspace_id)
    if count >= plan.max_members:
        raise plan_limit("max_members", plan.max_members)


async def check_flag_room(conn: Conn, plan: plans.Plan, workspace_id: uuid.UUID) -> None:
    count = await conn.fetchval(FLAGS, workspace_id)
    if count >= plan.max_feature_flags:
        raise plan_limit("max_feature_flags", plan.max_feature_flags)


async def check_experiment_room(conn: Conn, plan: plans.Plan, workspace_id: uuid.UUID) -> None:
    """Draft and running experiments count; stopped ones do not."""
    count = await conn.fetchval(EXPERIMENTS, workspace_id)
    if count >= plan.max_experiments:
        raise plan_limit("max_experiments", plan.max_experiments)


async def check_workspace_room(conn: Conn, user_id: uuid.UUID, maximum: int) -> None:
    """The user may join one more workspace (locks the user row until the transaction ends)."""
    await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
    count = await conn.fetchval("SELECT count(*) FROM workspace_members WHERE user_id = $1", user_id)
    if count >= maximum:
        raise ApiError(403, "WORKSPACE_LIMIT", f"A user may belong to at most {maximum} workspaces",
                       {"limit": "max_workspaces_per_user", "max": maximum})  # fmt: skip


async def check_key_room(conn: Conn, plan: plans.Plan, workspace_id: uuid.UUID, freed: int = 0) -> None:
    """Room for one more active key (`freed`: active keys this change stops at once, as a rotation
    without grace does). A key in its grace period is active: it counts."""
    if not plan.api_access:
        raise ApiError(403, "PLAN_FEATURE_UNAVAILABLE", "The workspace's plan does not include API access",
                       {"feature": "api_access"})  # fmt: skip
    count = await conn.fetchval(KEYS, workspace_id)
    if count - freed >= plan.max_api_keys:
        raise plan_limit("max_api_keys", plan.max_api_keys)
