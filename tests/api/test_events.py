"""The event data API: the filtered, keyset-paged list, the export (small: contents and formats), event
types from usage_daily, who may read events (roles, the `events:read` scope) and tenant isolation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import asyncpg
import httpx

from eventplane import tenants
from tests.api.conftest import Team, error_code, new_account, new_team, new_workspace
from tests.api.event_support import NOW, Ev, load

WS = "/api/v1/workspaces"
T0 = NOW - dt.timedelta(hours=3)


def sample() -> list[Ev]:
    """30 events a minute apart: types, users, anonymous ids and plans in turn."""
    out = []
    for i in range(30):
        props = {"plan": ("pro", "free")[i % 2], "n": i % 3, "beta": i % 7 == 0}
        out.append(Ev(f"m-{i:02d}", ("signup", "page_view", "click")[i % 3], T0 + dt.timedelta(minutes=i),
                      user_id=f"u{i % 4}" if i % 5 else None, anonymous_id=f"a{i % 2}", properties=props,
                      value=float(i)))  # fmt: skip
    return out


async def seeded_team(api: httpx.AsyncClient, pool: asyncpg.Pool) -> tuple[Team, list[Ev]]:
    team = await new_team(api)
    events = sample()
    await load(pool, [e.record(team.workspace_id) for e in events])
    return team, events


def newest_first(events: list[Ev]) -> list[str]:
    return [e.message_id for e in sorted(events, key=lambda e: (e.timestamp, e.message_id), reverse=True)]


async def ids(api: httpx.AsyncClient, team: Team, query: str) -> list[str]:
    r = await api.get(f"{WS}/{team.workspace_id}/events?{query}", headers=team.viewer.headers)
    assert r.status_code == 200, r.text
    return [item["message_id"] for item in r.json()["items"]]


async def test_each_filter_returns_exactly_the_matching_events_newest_first(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    team, events = await seeded_team(api, pool)
    start, end = T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=20)
    cases: list[tuple[str, Any]] = [
        ("limit=200", lambda e: True),
        ("event_type=signup", lambda e: e.event_type == "signup"),
        ("user_id=u1", lambda e: e.user_id == "u1"),
        ("anonymous_id=a0", lambda e: e.anonymous_id == "a0"),
        (f"from={start.isoformat()}&to={end.isoformat()}".replace("+", "%2B"), lambda e: start <= e.timestamp < end),
        ("property=plan:pro", lambda e: e.properties["plan"] == "pro"),
        ("property=n:2", lambda e: e.properties["n"] == 2),
        ("property=beta:true", lambda e: e.properties["beta"]),
        ("event_type=click&user_id=u3&property=plan:free", lambda e: e.event_type == "click" and e.user_id == "u3"
         and e.properties["plan"] == "free"),
        ("event_type=nothing", lambda e: False),
    ]  # fmt: skip
    for query, keep in cases:
        assert await ids(api, team, query) == newest_first([e for e in events if keep(e)]), query
    r = await api.get(f"{WS}/{team.workspace_id}/events?limit=1", headers=team.viewer.headers)
    item = r.json()["items"][0]
    assert item == {"message_id": "m-29", "event_type": "click", "user_id": "u1", "anonymous_id": "a1",
                    "value": 29.0, "properties": {"plan": "free", "n": 2, "beta": False},
                    "timestamp": (T0 + dt.timedelta(minutes=29)).isoformat().replace("+00:00", "Z"),
                    "received_at": NOW.isoformat().replace("+00:00", "Z"), "context": None}  # fmt: skip


async def test_keyset_pages_cover_every_event_once_in_order(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team, events = await seeded_team(api, pool)
    # Ties on the timestamp are ordered by message_id, so no page boundary loses or repeats one.
    same = T0 + dt.timedelta(minutes=5)
    ties = [Ev(f"tie-{i}", "signup", same) for i in range(9)]
    await load(pool, [e.record(team.workspace_id) for e in ties])
    seen: list[str] = []
    url = f"{WS}/{team.workspace_id}/events?limit=7"
    cursor = ""
    for _ in range(20):
        r = await api.get(url + cursor, headers=team.viewer.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 7
        seen += [item["message_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == newest_first(events + ties)
    filtered = await ids(api, team, "event_type=signup&limit=3")
    assert len(filtered) == 3


async def test_bad_filters_are_400_with_the_field(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    for query, field in [("property=plan", "property"), ("property=:x", "property"), ("from=yesterday", "from"),
                         ("from=2026-01-01T00:00:00", "from"), ("cursor=abc", "cursor"), ("limit=0", "limit"),
                         ("from=2026-02-01&to=2026-01-01", "from"), ("user_id=" + "x" * 201, "user_id"),
                         ("user_id=a%00b", "user_id")]:  # fmt: skip
        r = await api.get(f"{WS}/{team.workspace_id}/events?{query}", headers=team.viewer.headers)
        assert r.status_code == 400, (query, r.text)
        assert error_code(r) == "VALIDATION_ERROR" and r.json()["error"]["details"]["field"] == field, query
    r = await api.get(f"{WS}/{team.workspace_id}/events/export?format=xml", headers=team.viewer.headers)
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "format"


async def test_export_streams_every_matching_event_as_ndjson_or_csv(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team, events = await seeded_team(api, pool)
    url = f"{WS}/{team.workspace_id}/events/export"
    r = await api.get(url, headers=team.viewer.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["message_id"] for e in lines] == newest_first(events)
    assert lines[-1]["properties"] == {"plan": "pro", "n": 0, "beta": True}
    r = await api.get(url + "?format=csv&event_type=click", headers=team.viewer.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["message_id"] for row in rows] == newest_first([e for e in events if e.event_type == "click"])
    assert rows[0]["user_id"] == "u1" and json.loads(rows[0]["properties"])["plan"] == "free"
    assert rows[0]["timestamp"] == (T0 + dt.timedelta(minutes=29)).isoformat()
    empty = await api.get(url + "?format=csv&event_type=none", headers=team.viewer.headers)
    assert empty.text.splitlines() == [",".join(("message_id", "event_type", "user_id", "anonymous_id", "value",
                                                 "timestamp", "received_at", "properties", "context"))]  # fmt: skip


async def test_event_types_with_counts_and_last_day_seen(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    d1, d2, d3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 5)
    await pool.executemany(
        "INSERT INTO usage_daily (workspace_id, day, event_type, events) VALUES ($1, $2, $3, $4)",
        [(team.workspace_id, d, t, n) for d, t, n in [(d1, "click", 3), (d2, "click", 4), (d1, "view", 9),
                                                        (d3, "signup", 1)]],
    )  # fmt: skip
    url = f"{WS}/{team.workspace_id}/event-types"
    r = await api.get(url, headers=team.viewer.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [{"event_type": "view", "events": 9, "last_seen": "2026-03-01"},
                                  {"event_type": "click", "events": 7, "last_seen": "2026-03-02"},
                                  {"event_type": "signup", "events": 1, "last_seen": "2026-03-05"}]}  # fmt: skip
    r = await api.get(url + "?from=2026-03-02&to=2026-03-04", headers=team.viewer.headers)
    assert r.json() == {"items": [{"event_type": "click", "events": 4, "last_seen": "2026-03-02"}]}
    r = await api.get(url + "?from=2026-03-04&to=2026-03-02", headers=team.viewer.headers)
    assert r.status_code == 400 and error_code(r) == "VALIDATION_ERROR"


def routes(workspace_id: str) -> list[str]:
    base = f"{WS}/{workspace_id}"
    return [f"{base}/events", f"{base}/events/export", f"{base}/events/export?format=csv", f"{base}/event-types",
            f"{base}/events/live"]  # fmt: skip


async def test_every_role_reads_events_and_keys_need_the_events_read_scope(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    team, _ = await seeded_team(api, pool)
    for role in ("OWNER", "ADMIN", "DEVELOPER", "VIEWER"):
        r = await api.get(f"{WS}/{team.workspace_id}/events", headers=team.by_role(role).headers)
        assert r.status_code == 200 and len(r.json()["items"]) == 30, role
    wid = team.workspace_id
    for scopes, status in ((["events:read"], 200), (["admin"], 200), (["read"], 403), (["write"], 403)):
        _, key = await tenants.create_api_key(pool, workspace_id=wid, name="s", scope_names=scopes)
        for url in routes(wid)[:4]:
            r = await api.get(url, headers={"X-API-Key": key})
            assert r.status_code == status, (scopes, url, r.text)
            if status == 403:
                assert error_code(r) == "INSUFFICIENT_SCOPE"
                assert r.json()["error"]["details"]["required"] == "events:read"
    r = await api.post(f"{WS}/{wid}/api-keys", json={"name": "script", "scopes": ["events:read"]},
                       headers=team.developer.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    assert (await api.get(f"{WS}/{wid}/events", headers={"X-API-Key": r.json()["key"]})).status_code == 200


async def test_a_user_or_key_of_b_gets_404_for_the_events_of_a(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team, _ = await seeded_team(api, pool)
    b_owner = await new_account(api)
    b = (await new_workspace(api, b_owner))["id"]
    _, b_key = await tenants.create_api_key(pool, workspace_id=b, name="b", scope_names=["admin"])
    for url in routes(team.workspace_id):
        for headers in (b_owner.headers, {"X-API-Key": b_key}):
            r = await api.get(url, headers=headers)
            assert r.status_code == 404 and error_code(r) == "NOT_FOUND", (url, r.text)
    r = await api.get(f"{WS}/{b}/events", headers=b_owner.headers)
    assert r.status_code == 200 and r.json()["items"] == []
    r = await api.get(f"{WS}/{team.workspace_id}/events")
    assert r.status_code == 401
