"""Usage (from the workers' usage_daily counters) and billing."""

from __future__ import annotations

import base64
import datetime as dt
import json

import asyncpg
import httpx

from tests.api.conftest import error_code, new_team
from tests.conftest import make_tenant

WS = "/api/v1/workspaces"


async def seed(pool: asyncpg.Pool, workspace_id: str, rows: list[tuple[dt.date, str, int]]) -> None:
    await pool.executemany(
        "INSERT INTO usage_daily (workspace_id, day, event_type, events) VALUES ($1, $2, $3, $4)",
        [(workspace_id, day, event_type, n) for day, event_type, n in rows],
    )


async def test_usage_per_day_and_type(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    d1, d2, d3 = dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)
    await seed(pool, team.workspace_id, [(d1, "click", 3), (d1, "view", 2), (d2, "click", 5), (d3, "click", 7)])
    await pool.executemany(
        "INSERT INTO client_drops_daily (workspace_id, day, reason, dropped) VALUES ($1, $2, $3, $4)",
        [(team.workspace_id, d1, "queue_full", 4), (team.workspace_id, d2, "queue_full", 1),
         (team.workspace_id, d2, "shutdown", 2), (team.workspace_id, d3, "shutdown", 9)],
    )  # fmt: skip
    r = await api.get(f"{WS}/{team.workspace_id}/usage", params={"from": "2026-01-01", "to": "2026-01-02"},
                      headers=team.viewer.headers)  # fmt: skip
    assert r.status_code == 200
    assert r.json() == {
        "workspace_id": team.workspace_id,
        "from": "2026-01-01",
        "to": "2026-01-02",
        "total": 10,
        "days": [
            {"day": "2026-01-01", "events": 5, "by_type": {"click": 3, "view": 2}},
            {"day": "2026-01-02", "events": 5, "by_type": {"click": 5}},
        ],
        "client_dropped": {"queue_full": 5, "shutdown": 2},
    }


async def test_usage_defaults_to_the_last_30_days_and_validates(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    r = await api.get(f"{WS}/{team.workspace_id}/usage", headers=team.owner.headers)
    body = r.json()
    today = dt.datetime.now(dt.UTC).date()
    assert (body["from"], body["to"], body["total"], body["days"]) == (
        str(today - dt.timedelta(days=29)),
        str(today),
        0,
        [],
    )
    for params in ({"from": "2026-02-01", "to": "2026-01-01"}, {"from": "yesterday"}, {"from": "2020-01-01",
                   "to": "2026-01-01"}):  # fmt: skip
        r = await api.get(f"{WS}/{team.workspace_id}/usage", params=params, headers=team.owner.headers)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), params


async def test_usage_with_an_api_key(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool, scopes=["read"])
    r = await api.get(f"{WS}/{tenant.workspace_id}/usage", headers={"X-API-Key": tenant.key})
    assert r.status_code == 200
    track_only = await make_tenant(pool, scopes=["track:write"])
    r = await api.get(f"{WS}/{track_only.workspace_id}/usage", headers={"X-API-Key": track_only.key})
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")


async def test_billing(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    today = dt.datetime.now(dt.UTC).date()
    month_start = today.replace(day=1)
    last_month = month_start - dt.timedelta(days=1)
    await seed(pool, team.workspace_id, [(month_start, "a", 4), (today, "b", 6), (last_month, "a", 100)])
    await api.post(f"{WS}/{team.workspace_id}/api-keys", json={"name": "k", "scopes": ["read"]},
                   headers=team.owner.headers)  # fmt: skip
    r = await api.get(f"{WS}/{team.workspace_id}/billing", headers=team.admin.headers)
    assert r.status_code == 200
    body = r.json()
    assert (body["plan"], body["limits"]["max_members"]) == ("pro", 50)
    assert body["period_start"] == str(month_start) and body["period_end"] > str(today)
    assert body["usage"] == {"events": 10, "members": 4, "active_api_keys": 1}
    r = await api.get(f"{WS}/{team.workspace_id}/billing", headers=team.developer.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")


def _cursor(stamp: str, id_: str = "00000000-0000-4000-8000-000000000000") -> str:
    return base64.urlsafe_b64encode(json.dumps([stamp, id_]).encode()).decode().rstrip("=")


async def test_times_outside_what_python_holds_are_400_not_500(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws, h = team.workspace_id, team.owner.headers
    r = await api.get(f"{WS}/{ws}/usage", params={"to": "0001-01-05"}, headers=h)
    assert (r.status_code, error_code(r), r.json()["error"]["details"]["field"]) == (400, "VALIDATION_ERROR", "to")
    lists = [
        WS,
        f"{WS}/{ws}/members",
        f"{WS}/{ws}/invites",
        f"{WS}/{ws}/api-keys",
        "/api/v1/workspaces/invitations/pending",
    ]
    for stamp in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00"):
        for url in lists:
            r = await api.get(url, params={"cursor": _cursor(stamp)}, headers=h)
            assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), (url, stamp)
    for stamp in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        r = await api.post(f"{WS}/{ws}/api-keys", json={"name": "k", "scopes": ["read"], "expires_at": stamp},
                           headers=h)  # fmt: skip
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), stamp


async def test_limits_show_what_each_plan_limit_counts(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    ws = f"{WS}/{team.workspace_id}"
    h = team.owner.headers
    for key in ("a", "b"):
        assert (await api.post(f"{ws}/feature-flags", json={"key": key}, headers=h)).status_code == 201
    experiment = {"key": "e", "variants": [{"key": "c", "weight": 50}, {"key": "t", "weight": 50}],
                  "conversion": {"event_type": "buy"}}  # fmt: skip
    for key in ("e1", "e2"):
        assert (await api.post(f"{ws}/experiments", json={**experiment, "key": key}, headers=h)).status_code == 201
    assert (await api.patch(f"{ws}/experiments/e2", json={"status": "running"}, headers=h)).status_code == 200
    assert (await api.patch(f"{ws}/experiments/e2", json={"status": "stopped"}, headers=h)).status_code == 200
    keys = [(await api.post(f"{ws}/api-keys", json={"name": n, "scopes": ["read"]}, headers=h)).json() for n in "xy"]
    assert (await api.delete(f"{ws}/api-keys/{keys[1]['id']}", headers=h)).status_code == 204

    r = await api.get(f"{ws}/limits", headers=team.viewer.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["workspace_id"], body["plan"]) == (team.workspace_id, "pro")
    assert body["limits"]["max_members"] == 50 and body["limits"]["max_feature_flags"] == 500
    # 4 members; 2 flags; 1 experiment (the stopped one frees its room); 1 active key (the revoked one does not count)
    assert body["used"] == {"members": 4, "feature_flags": 2, "experiments": 1, "api_keys": 1}
    # A key with workspace:read (the `read` bundle) reads its own workspace's limits; one without it cannot.
    r = await api.get(f"{ws}/limits", headers={"x-api-key": keys[0]["key"]})
    assert (r.status_code, r.json()["used"]["api_keys"]) == (200, 1)
    track = (await api.post(f"{ws}/api-keys", json={"name": "t", "scopes": ["track:write"]}, headers=h)).json()
    r = await api.get(f"{ws}/limits", headers={"x-api-key": track["key"]})
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")


async def test_limits_of_another_workspace_are_not_found(api: httpx.AsyncClient) -> None:
    team, other = await new_team(api), await new_team(api)
    r = await api.get(f"{WS}/{other.workspace_id}/limits", headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
