"""Usage (events stored per day and type, from the workers' `usage_daily` counters) and billing."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from api import access, limits
from api import permissions as p
from api.rest import path_uuid, query_date, reply
from api.routing import Endpoint
from api.state import services
from api.wire import BillingOut, BillingUsage, LimitsOut, LimitsUsed, UsageDay, UsageOut
from eventplane import plans
from eventplane.errors import validation

DEFAULT_DAYS = 30
MAX_DAYS = 366


def _range(request: Request) -> tuple[dt.date, dt.date]:
    """[from, to], both inclusive, UTC days; default the last 30 days."""
    today = dt.datetime.now(dt.UTC).date()
    to = query_date(request, "to") or today
    try:
        start = query_date(request, "from") or to - dt.timedelta(days=DEFAULT_DAYS - 1)
    except OverflowError:  # `to` within 30 days of 0001-01-01: the default range would start before year 1
        raise validation(f"'to' is within {DEFAULT_DAYS} days of 0001-01-01; give 'from' too", "to") from None
    if start > to:
        raise validation("'from' must not be after 'to'", "from")
    if (to - start).days >= MAX_DAYS:
        raise validation(f"Ask for at most {MAX_DAYS} days at once", "from")
    return start, to


async def usage(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.workspace(request, workspace_id, p.WORKSPACE_READ)
    start, to = _range(request)
    rows = await (await services(request).data.pool(workspace_id)).fetch(
        "SELECT day, event_type, events FROM usage_daily WHERE workspace_id = $1 AND day BETWEEN $2 AND $3 "
        "ORDER BY day, event_type",
        workspace_id,
        start,
        to,
    )
    days: dict[dt.date, UsageDay] = {}
    for row in rows:
        day = days.setdefault(row["day"], UsageDay(day=row["day"], events=0, by_type={}))
        day.events += row["events"]
        day.by_type[row["event_type"]] = row["events"]
    total = sum(d.events for d in days.values())
    dropped = await services(request).pool.fetch(
        "SELECT reason, sum(dropped)::bigint AS n FROM client_drops_daily "
        "WHERE workspace_id = $1 AND day BETWEEN $2 AND $3 GROUP BY reason ORDER BY reason",
        workspace_id,
        start,
        to,
    )
    # SDKs' own losses, from client reports: edges count them in the hub, so they stay there.
    client_dropped = {row["reason"]: row["n"] for row in dropped}
    out = UsageOut(workspace_id=workspace_id, from_=start, to=to, total=total, days=list(days.values()),
                   client_dropped=client_dropped)  # fmt: skip
    return reply(out)


def _period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The calendar month (UTC) containing `today`: [start, end)."""
    start = today.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


async def billing(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    workspace = await access.workspace(request, workspace_id, p.BILLING_READ)
    start, end = _period(dt.datetime.now(dt.UTC).date())
    svc = services(request)
    events = await (await svc.data.pool(workspace_id)).fetchval(
        "SELECT coalesce(sum(events), 0)::bigint FROM usage_daily WHERE workspace_id = $1 AND day >= $2 AND day < $3",
        workspace_id,
        start,
        end,
    )
    row = await svc.pool.fetchrow(
        "SELECT (SELECT count(*) FROM workspace_members WHERE workspace_id = $1) AS members, "
        f"      (SELECT count(*) FROM api_keys WHERE workspace_id = $1 AND {limits.ACTIVE_KEY}) AS keys",
        workspace_id,
    )
    assert row is not None
    return reply(
        BillingOut(
            workspace_id=workspace_id,
            plan=workspace["plan"],
            limits=plans.get(workspace["plan"]),
            period_start=start,
            period_end=end,
            usage=BillingUsage(events=events, members=row["members"], active_api_keys=row["keys"]),
        )
    )


async def plan_limits(request: Request) -> Response:
    """The plan's limits beside what each counts now (across the org, as the checks under the row locks count
    them): what the dashboard's usage page shows as "how close"."""
    workspace_id = path_uuid(request, "workspace_id")
    workspace = await access.workspace(request, workspace_id, p.WORKSPACE_READ)
    row = await services(request).pool.fetchrow(
        f"SELECT ({limits.MEMBERS}) AS members, ({limits.FLAGS}) AS flags, ({limits.EXPERIMENTS}) AS experiments, "
        f"({limits.KEYS}) AS keys",
        workspace_id,
    )
    assert row is not None
    used = LimitsUsed(members=row["members"], feature_flags=row["flags"], experiments=row["experiments"],
                      api_keys=row["keys"])  # fmt: skip
    plan = workspace["plan"]
    return reply(LimitsOut(workspace_id=workspace_id, plan=plan, limits=plans.get(plan), used=used))


WS = "/api/v1/workspaces/{workspace_id:uuid}"
ENDPOINTS = [
    Endpoint("GET", f"{WS}/usage", usage, "Events stored per day and event type (default: last 30 days)", None,
             UsageOut, auth="session_or_key", query=("from", "to"), errors=(400, 401, 403, 404)),
    Endpoint("GET", f"{WS}/limits", plan_limits, "The plan's limits and what each counts now (across the org)",
             None, LimitsOut, auth="session_or_key", errors=(401, 403, 404)),
    Endpoint("GET", f"{WS}/billing", billing, "Plan, limits and this month's usage", None, BillingOut,
             auth="session_or_key", errors=(401, 403, 404)),
]  # fmt: skip
