"""Experiments through the management API: the CRUD, status transitions, namespaces that never share a
unit, the plan cap, re-randomizing, and `sticky` turning "remote" when a split changes after exposures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from eventplane.settings import Settings
from tests.api.conftest import error_code, new_account, new_team, new_workspace
from tests.api.flag_support import config_channel, document, experiments_url, key_headers
from tests.conftest import drain

EXP: dict[str, Any] = {
    "key": "pricing-page",
    "name": "Pricing page",
    "hypothesis": "Annual prices first sell more plans",
    "variants": [{"key": "control", "weight": 50}, {"key": "annual", "weight": 50}],
    "targeting": {"match": "all", "conditions": [{"attribute": "country", "operator": "in", "value": ["FR", "DE"]}]},
    "allocation": 80,
    "conversion": {"event_type": "purchase", "value_property": "amount"},
}
FIELDS = {"id", "key", "name", "hypothesis", "status", "salt", "bucket_version", "variants", "targeting", "allocation",
          "conversion", "namespace", "sticky", "started_at", "stopped_at", "created_at", "updated_at"}  # fmt: skip


async def _status(api: httpx.AsyncClient, ws: str, key: str, status: str, headers: dict[str, str]) -> httpx.Response:
    return await api.patch(experiments_url(ws, key), json={"status": status}, headers=headers)


async def test_create_read_run_stop_delete(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws, dev = team.workspace_id, team.developer.headers
    async with config_channel(api) as heard:
        r = await api.post(experiments_url(ws), json=EXP, headers=dev)
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == FIELDS
    assert (created["status"], created["bucket_version"], created["sticky"], created["namespace"]) == (
        "draft", 1, "local", None)  # fmt: skip
    assert created["conversion"] == EXP["conversion"] and created["targeting"] == EXP["targeting"]
    assert heard == [ws]
    assert (await api.get(experiments_url(ws, EXP["key"]), headers=team.viewer.headers)).json() == created
    listed = (await api.get(experiments_url(ws), headers=team.viewer.headers)).json()
    assert [e["key"] for e in listed["items"]] == [EXP["key"]]
    doc = await document(api, ws)
    assert doc["experiments"] == [{
        "key": EXP["key"], "status": "draft", "salt": created["salt"], "bucket_version": 1, "allocation": 80.0,
        "targeting": EXP["targeting"], "namespace": None, "variants": EXP["variants"], "sticky": "local"}]  # fmt: skip

    r = await _status(api, ws, EXP["key"], "running", dev)
    assert r.status_code == 200 and r.json()["status"] == "running" and r.json()["started_at"] is not None
    r = await _status(api, ws, EXP["key"], "stopped", dev)
    assert r.status_code == 200 and r.json()["stopped_at"] is not None
    assert (await document(api, ws))["experiments"][0]["status"] == "stopped"
    assert (await api.delete(experiments_url(ws, EXP["key"]), headers=dev)).status_code == 204
    r = await api.get(experiments_url(ws, EXP["key"]), headers=dev)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    assert (await document(api, ws))["experiments"] == []


@pytest.mark.parametrize(("start", "to"), [("draft", "stopped"), ("running", "draft"), ("stopped", "running"),
                                           ("stopped", "draft")])  # fmt: skip
async def test_status_moves_forward_only(api: httpx.AsyncClient, start: str, to: str) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    assert (await api.post(experiments_url(ws), json=EXP, headers=owner.headers)).status_code == 201
    for step in {"draft": [], "running": ["running"], "stopped": ["running", "stopped"]}[start]:
        assert (await _status(api, ws, EXP["key"], step, owner.headers)).status_code == 200
    r = await _status(api, ws, EXP["key"], to, owner.headers)
    assert (r.status_code, error_code(r)) == (409, "INVALID_TRANSITION")
    assert r.json()["error"]["details"] == {"from": start, "to": to}
    assert (await api.get(experiments_url(ws, EXP["key"]), headers=owner.headers)).json()["status"] == start


def _exp(**changes: Any) -> dict[str, Any]:
    return {**EXP, **changes}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_exp(variants=[{"key": "only", "weight": 100}]), "variants"),
        (_exp(variants=[{"key": "a", "weight": 50}, {"key": "b", "weight": 40}]), "variants"),
        (_exp(variants=[{"key": "a", "weight": 50}, {"key": "a", "weight": 50}]), "variants[1].key"),
        (_exp(variants=[{"key": "a", "weight": 50.005}, {"key": "b", "weight": 49.995}]), "variants[0].weight"),
        (_exp(allocation=101), "allocation"),
        (_exp(allocation=33.333), "allocation"),
        (_exp(namespace={"name": "n", "start": 5000, "end": 5000}), "namespace.end"),
        (_exp(namespace={"name": "n", "start": 0, "end": 10001}), "namespace.end"),
        (
            _exp(targeting={"match": "all", "conditions": [{"attribute": "v", "operator": "semver_gt", "value": "x"}]}),
            "targeting.conditions[0].value",
        ),
        (_exp(conversion={"event_type": ""}), "conversion.event_type"),
        (_exp(status="running"), "status"),
        (_exp(key="Bad Key"), "key"),
    ],
)
async def test_definitions_are_checked(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    r = await api.post(experiments_url(ws), json=body, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), r.text
    assert r.json()["error"]["details"]["field"] == field


async def test_namespaces_never_share_a_unit(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    h = owner.headers
    for key, start, end in (("a", 0, 5000), ("b", 4000, 8000), ("c", 5000, 10000)):
        body = _exp(key=key, namespace={"name": "checkout", "start": start, "end": end})
        assert (await api.post(experiments_url(ws), json=body, headers=h)).status_code == 201
    assert (await _status(api, ws, "a", "running", h)).status_code == 200
    r = await _status(api, ws, "b", "running", h)
    assert (r.status_code, error_code(r)) == (409, "NAMESPACE_OVERLAP")
    assert r.json()["error"]["details"] == {"namespace": "checkout", "experiment": "a"}
    assert (await _status(api, ws, "c", "running", h)).status_code == 200  # [5000, 10000) touches, not overlaps
    # Moving a running experiment's range onto another's is refused the same way.
    r = await api.patch(experiments_url(ws, "c"), json={"namespace": {"name": "checkout", "start": 4999, "end": 10000}},
                        headers=h)  # fmt: skip
    assert (r.status_code, error_code(r)) == (409, "NAMESPACE_OVERLAP")
    # Another namespace, or a stopped experiment, does not count.
    body = {"namespace": {"name": "search", "start": 0, "end": 10000}}
    assert (await api.patch(experiments_url(ws, "b"), json=body, headers=h)).status_code == 200
    assert (await _status(api, ws, "b", "running", h)).status_code == 200
    assert (await _status(api, ws, "a", "stopped", h)).status_code == 200
    body = {"namespace": {"name": "checkout", "start": 0, "end": 5000}}
    assert (await api.patch(experiments_url(ws, "b"), json=body, headers=h)).status_code == 200
    doc = await document(api, ws)
    assert {e["key"]: e["namespace"] for e in doc["experiments"]}["b"] == {"name": "checkout", "start": 0, "end": 5000}


async def test_variant_keys_are_fixed_once_started(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    assert (await api.post(experiments_url(ws), json=EXP, headers=owner.headers)).status_code == 201
    renamed = [{"key": "control", "weight": 50}, {"key": "monthly", "weight": 50}]
    r = await api.patch(experiments_url(ws, EXP["key"]), json={"variants": renamed}, headers=owner.headers)
    assert r.status_code == 200  # a draft may change anything
    assert (await _status(api, ws, EXP["key"], "running", owner.headers)).status_code == 200
    r = await api.patch(experiments_url(ws, EXP["key"]), json={"variants": EXP["variants"]}, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (409, "VARIANTS_LOCKED")
    reweighted = [{"key": "control", "weight": 70}, {"key": "monthly", "weight": 30}]
    r = await api.patch(experiments_url(ws, EXP["key"]), json={"variants": reweighted}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["variants"] == reweighted


async def test_plan_cap_counts_drafts_and_running(api: httpx.AsyncClient) -> None:
    team = await new_team(api, plan="free")  # max_experiments 10
    ws, h = team.workspace_id, team.owner.headers
    for i in range(10):
        assert (await api.post(experiments_url(ws), json=_exp(key=f"e{i}"), headers=h)).status_code == 201
    assert (await _status(api, ws, "e0", "running", h)).status_code == 200
    r = await api.post(experiments_url(ws), json=_exp(key="over"), headers=h)
    assert (r.status_code, error_code(r)) == (403, "PLAN_LIMIT")
    assert r.json()["error"]["details"] == {"limit": "max_experiments", "max": 10}
    assert (await _status(api, ws, "e0", "stopped", h)).status_code == 200  # a stopped one does not count
    assert (await api.post(experiments_url(ws), json=_exp(key="over"), headers=h)).status_code == 201


async def test_permissions(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws = team.workspace_id
    r = await api.post(experiments_url(ws), json=EXP, headers=team.viewer.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    read, write, admin = [await key_headers(api, team, [s]) for s in ("read", "write", "admin")]
    for headers in (read, write):
        r = await api.post(experiments_url(ws), json=EXP, headers=headers)
        assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    assert (await api.post(experiments_url(ws), json=EXP, headers=admin)).status_code == 201
    assert (await api.get(experiments_url(ws, EXP["key"]), headers=read)).status_code == 200
    r = await api.patch(experiments_url(ws, EXP["key"]), json={"allocation": 100}, headers=read)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    r = await api.patch(experiments_url(ws, EXP["key"]), json={"allocation": 100}, headers=write)
    assert r.status_code == 200 and r.json()["allocation"] == 100
    for change in ({"status": "running"}, {"allocation": 90, "name": "x"}):
        r = await api.patch(experiments_url(ws, EXP["key"]), json=change, headers=write)
        assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    r = await api.post(experiments_url(ws, EXP["key"], "rerandomize"), headers=write)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    r = await api.delete(experiments_url(ws, EXP["key"]), headers=write)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    assert (await api.delete(experiments_url(ws, EXP["key"]), headers=admin)).status_code == 204


async def test_rerandomize(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    created = (await api.post(experiments_url(ws), json=EXP, headers=owner.headers)).json()
    async with config_channel(api) as heard:
        r = await api.post(experiments_url(ws, EXP["key"], "rerandomize"), headers=owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["bucket_version"] == 2 and r.json()["salt"] != created["salt"]
    assert heard == [ws]
    doc = await document(api, ws)
    assert (doc["experiments"][0]["bucket_version"], doc["experiments"][0]["salt"]) == (2, r.json()["salt"])
    for step in ("running", "stopped"):
        assert (await _status(api, ws, EXP["key"], step, owner.headers)).status_code == 200
    r = await api.post(experiments_url(ws, EXP["key"], "rerandomize"), headers=owner.headers)
    assert (r.status_code, error_code(r)) == (409, "EXPERIMENT_STOPPED")


async def test_sticky_turns_remote_when_a_split_changes_after_exposures(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, api_settings: Settings
) -> None:
    team = await new_team(api)
    ws, h = team.workspace_id, team.owner.headers
    assert (await api.post(experiments_url(ws), json=EXP, headers=h)).status_code == 201
    assert (await _status(api, ws, EXP["key"], "running", h)).status_code == 200
    # Without exposures, a new split changes nobody's recorded variant: SDKs keep deciding locally.
    r = await api.patch(experiments_url(ws, EXP["key"]), json={"allocation": 90}, headers=h)
    assert r.json()["sticky"] == "local"

    # One exposure through the real pipeline: the edge queues it, a worker stores it and its assignment.
    tracker = await key_headers(api, team, ["track:write"])
    exposure = {"event_type": "$exposure", "user_id": "u1", "message_id": f"exp:{EXP['key']}:1:u1",
                "properties": {"experiment": EXP["key"], "variant": "annual", "bucket_version": 1}}  # fmt: skip
    assert (await edge.post("/api/v1/tracking/track", json=exposure, headers=tracker)).status_code == 202
    await drain(api_settings)

    async with config_channel(api) as heard:
        weights = [{"key": "control", "weight": 20}, {"key": "annual", "weight": 80}]
        r = await api.patch(experiments_url(ws, EXP["key"]), json={"variants": weights}, headers=h)
    assert r.status_code == 200 and r.json()["sticky"] == "remote"
    assert heard == [ws]
    assert (await document(api, ws))["experiments"][0]["sticky"] == "remote"
    # A new bucket version has no exposures yet: local again.
    r = await api.post(experiments_url(ws, EXP["key"], "rerandomize"), headers=h)
    assert (r.json()["bucket_version"], r.json()["sticky"]) == (2, "local")
