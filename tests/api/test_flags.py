"""Feature flags through the management API: the CRUD, what a definition must satisfy, who may change
what (roles, key scopes), the plan cap under concurrency, and the config document and push."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.conftest import Team, error_code, new_account, new_team, new_workspace, set_plan
from tests.api.flag_support import config_channel, document, flags_url, key_headers

FLAG: dict[str, Any] = {
    "key": "new-checkout",
    "name": "New checkout",
    "description": "The one-page checkout",
    "enabled": True,
    "rollout": 12.5,
    "rules": [
        {"id": "beta", "match": "all", "rollout": 100,
         "conditions": [{"attribute": "plan", "operator": "in", "value": ["pro", "enterprise"]},
                        {"attribute": "app_version", "operator": "semver_gte", "value": "2.1.0-beta.1"}]},
        {"match": "any", "rollout": 50, "conditions": [{"attribute": "age", "operator": "gte", "value": 18}]},
    ],
}  # fmt: skip
FIELDS = {"id", "key", "name", "description", "enabled", "salt", "rollout", "rules", "value_type", "default_value",
          "on_value", "values", "created_at", "updated_at"}  # fmt: skip


async def test_create_read_change_delete(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws, dev = team.workspace_id, team.developer.headers
    async with config_channel(api) as heard:
        r = await api.post(flags_url(ws), json=FLAG, headers=dev)
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == FIELDS
    assert len(created["salt"]) == 12 and int(created["salt"], 16) >= 0
    assert (created["value_type"], created["default_value"], created["on_value"], created["values"]) == (
        "boolean",
        False,
        True,
        [],
    )
    assert [rule["id"] for rule in created["rules"]] == ["beta", "r2"]  # ids by position when left out
    assert heard == [ws]

    assert (await api.get(flags_url(ws, "new-checkout"), headers=team.viewer.headers)).json() == created
    listed = (await api.get(flags_url(ws), headers=team.viewer.headers)).json()
    assert [f["key"] for f in listed["items"]] == ["new-checkout"] and listed["next_cursor"] is None

    doc = await document(api, ws)
    assert doc["version"] == 1
    assert doc["flags"] == [{k: created[k] for k in ("key", "enabled", "salt", "rollout", "rules", "value_type",
                                                      "default_value", "on_value", "values")}]  # fmt: skip

    async with config_channel(api) as heard:
        r = await api.patch(flags_url(ws, "new-checkout"), json={"rollout": 20, "description": None}, headers=dev)
    assert r.status_code == 200, r.text
    assert (r.json()["rollout"], r.json()["description"], r.json()["salt"]) == (20, None, created["salt"])
    assert r.json()["rules"] == created["rules"]
    assert heard == [ws]
    assert (await document(api, ws))["version"] == 2

    async with config_channel(api) as heard:
        assert (await api.delete(flags_url(ws, "new-checkout"), headers=dev)).status_code == 204
    assert heard == [ws]
    r = await api.get(flags_url(ws, "new-checkout"), headers=dev)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    doc = await document(api, ws)
    assert (doc["version"], doc["flags"]) == (3, [])


async def test_multivariate_flag(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    values = [{"key": "blue", "value": "#00f", "weight": 33.33}, {"key": "red", "value": "#f00", "weight": 66.67}]
    rules = [{"conditions": [{"attribute": "country", "operator": "eq", "value": "FR"}], "value": "bleu"}]
    body = {"key": "button-color", "value_type": "string", "default_value": "grey", "enabled": True, "values": values,
            "rules": rules}  # fmt: skip
    r = await api.post(flags_url(team.workspace_id), json=body, headers=team.developer.headers)
    assert r.status_code == 201, r.text
    flag = r.json()
    assert flag["on_value"] == "#00f" and flag["name"] == "button-color"
    assert flag["values"] == body["values"] and flag["rules"][0]["value"] == "bleu"
    # Changing the type alone leaves values of the old type: refused, naming the first that does not fit.
    r = await api.patch(flags_url(team.workspace_id, "button-color"), json={"value_type": "number"},
                        headers=team.developer.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    assert r.json()["error"]["details"]["field"] == "values[0].value"
    payload = {"key": "payload", "value_type": "object", "default_value": {}, "on_value": {"limits": [1, 2]}}
    r = await api.post(flags_url(team.workspace_id), json=payload, headers=team.developer.headers)
    assert r.status_code == 201 and r.json()["on_value"] == {"limits": [1, 2]}


def _cond(op: str, value: Any) -> dict[str, Any]:
    return {**FLAG, "rules": [{"conditions": [{"attribute": "a", "operator": op, "value": value}]}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**FLAG, "key": "Has-Capitals"}, "key"),
        ({**FLAG, "key": "-starts-with-dash"}, "key"),
        ({**FLAG, "key": "x" * 101}, "key"),
        ({**FLAG, "rollout": 100.5}, "rollout"),
        ({**FLAG, "rollout": 10.125}, "rollout"),
        (_cond("matches", "x"), "rules[0].conditions[0].operator"),
        (_cond("gt", "10"), "rules[0].conditions[0].value"),
        (_cond("gt", True), "rules[0].conditions[0].value"),
        (_cond("in", "pro"), "rules[0].conditions[0].value"),
        (_cond("in", []), "rules[0].conditions[0].value"),
        (_cond("in", [{"a": 1}]), "rules[0].conditions[0].value"),
        (_cond("eq", None), "rules[0].conditions[0].value"),
        (_cond("semver_gt", "1.2"), "rules[0].conditions[0].value"),
        (_cond("semver_lt", "01.2.3"), "rules[0].conditions[0].value"),
        (_cond("semver_eq", "1.2.3+build"), "rules[0].conditions[0].value"),
        ({**FLAG, "rules": [{"id": "a"}, {"id": "a"}]}, "rules[1].id"),
        ({**FLAG, "rules": [{"match": "some"}]}, "rules[0].match"),
        ({**FLAG, "rules": [{"rollout": 0.001}]}, "rules[0].rollout"),
        ({**FLAG, "rules": [{"value": "on"}]}, "rules[0].value"),  # a boolean flag's value is a boolean
        ({**FLAG, "value_type": "string"}, "default_value"),
        ({**FLAG, "value_type": "string", "default_value": "a"}, "on_value"),
        ({**FLAG, "default_value": 0}, "default_value"),
        (
            {**FLAG, "values": [{"key": "a", "value": True, "weight": 50}, {"key": "b", "value": False, "weight": 49}]},
            "values",
        ),
        (
            {**FLAG, "values": [{"key": "a", "value": True, "weight": 50}, {"key": "a", "value": False, "weight": 50}]},
            "values[1].key",
        ),
        ({**FLAG, "value_type": "json"}, "value_type"),
        ({**FLAG, "salt": "abc"}, "salt"),
    ],
)
async def test_definitions_are_checked(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    r = await api.post(flags_url(ws), json=body, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), r.text
    assert r.json()["error"]["details"]["field"] == field
    assert (await api.get(flags_url(ws), headers=owner.headers)).json()["items"] == []


async def test_nul_and_duplicates(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    body: dict[str, Any] = {"key": "s", "value_type": "string", "default_value": "a\u0000b", "on_value": "x"}
    r = await api.post(flags_url(ws), json=body, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (400, "INVALID_CHARACTER")
    body = {"key": "o", "value_type": "object", "default_value": {"k\u0000": 1}, "on_value": {}}
    r = await api.post(flags_url(ws), json=body, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (400, "INVALID_CHARACTER")
    assert (await api.post(flags_url(ws), json=FLAG, headers=owner.headers)).status_code == 201
    r = await api.post(flags_url(ws), json=FLAG, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (409, "FLAG_EXISTS")
    r = await api.patch(flags_url(ws, FLAG["key"]), json={"key": "renamed"}, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")  # keys never change


async def test_roles(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws = team.workspace_id
    r = await api.post(flags_url(ws), json=FLAG, headers=team.viewer.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    assert r.json()["error"]["details"] == {"required": "flags:write"}
    assert (await api.post(flags_url(ws), json=FLAG, headers=team.developer.headers)).status_code == 201
    r = await api.patch(flags_url(ws, FLAG["key"]), json={"rollout": 1}, headers=team.viewer.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.delete(flags_url(ws, FLAG["key"]), headers=team.viewer.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    outsider = await new_account(api)
    r = await api.get(flags_url(ws, FLAG["key"]), headers=outsider.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    assert (await api.delete(flags_url(ws, FLAG["key"]), headers=team.admin.headers)).status_code == 204


async def test_key_scopes(api: httpx.AsyncClient) -> None:
    """`read` reads; `write` changes rollout percentages only; `admin` creates, changes and deletes."""
    team = await new_team(api)
    ws = team.workspace_id
    read, write, admin = [await key_headers(api, team, [s]) for s in ("read", "write", "admin")]
    for headers in (read, write):
        r = await api.post(flags_url(ws), json=FLAG, headers=headers)
        assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    assert (await api.post(flags_url(ws), json=FLAG, headers=admin)).status_code == 201
    assert (await api.get(flags_url(ws, FLAG["key"]), headers=read)).status_code == 200
    assert (await api.get(flags_url(ws), headers=read)).json()["items"][0]["key"] == FLAG["key"]

    r = await api.patch(flags_url(ws, FLAG["key"]), json={"rollout": 30}, headers=read)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    r = await api.patch(flags_url(ws, FLAG["key"]), json={"rollout": 30, "enabled": False}, headers=write)
    assert r.status_code == 200 and (r.json()["rollout"], r.json()["enabled"]) == (30, False)
    r = await api.patch(flags_url(ws, FLAG["key"]), json={"rollout": 40, "name": "x"}, headers=write)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    assert r.json()["error"]["details"] == {"required": "flags:write"}
    r = await api.delete(flags_url(ws, FLAG["key"]), headers=write)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    assert (await api.patch(flags_url(ws, FLAG["key"]), json={"name": "x"}, headers=admin)).status_code == 200
    assert (await api.delete(flags_url(ws, FLAG["key"]), headers=admin)).status_code == 204

    other = await new_team(api)
    other_admin = await key_headers(api, other, ["admin"])
    r = await api.post(flags_url(ws), json=FLAG, headers=other_admin)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")


async def test_revoked_key_stops_at_once(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    r = await api.post(f"/api/v1/workspaces/{team.workspace_id}/api-keys", json={"name": "ci", "scopes": ["admin"]},
                       headers=team.owner.headers)  # fmt: skip
    key = {"X-API-Key": r.json()["key"]}
    revoked = await api.delete(f"/api/v1/workspaces/{team.workspace_id}/api-keys/{r.json()['id']}",
                               headers=team.owner.headers)  # fmt: skip
    assert revoked.status_code == 204
    r = await api.post(flags_url(team.workspace_id), json=FLAG, headers=key)
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")


async def _fill(api: httpx.AsyncClient, team: Team, n: int) -> None:
    for i in range(n):
        r = await api.post(flags_url(team.workspace_id), json={"key": f"f{i}"}, headers=team.owner.headers)
        assert r.status_code == 201, r.text


async def test_plan_cap_holds_under_concurrent_creates(api: httpx.AsyncClient) -> None:
    team = await new_team(api, plan="free")  # max_feature_flags 50
    await _fill(api, team, 48)
    answers = await asyncio.gather(*(api.post(flags_url(team.workspace_id), json={"key": f"race-{i}"},
                                              headers=team.developer.headers) for i in range(6)))  # fmt: skip
    assert sorted(r.status_code for r in answers) == [201, 201, 403, 403, 403, 403]
    refused = next(r for r in answers if r.status_code == 403)
    assert error_code(refused) == "PLAN_LIMIT"
    assert refused.json()["error"]["details"] == {"limit": "max_feature_flags", "max": 50}
    listed = await api.get(flags_url(team.workspace_id), params={"limit": 200}, headers=team.owner.headers)
    assert len(listed.json()["items"]) == 50
    # Deleting one makes room for one.
    assert (await api.delete(flags_url(team.workspace_id, "f0"), headers=team.owner.headers)).status_code == 204
    assert (
        await api.post(flags_url(team.workspace_id), json={"key": "again"}, headers=team.owner.headers)
    ).status_code == 201


async def test_unknown_plan_allows_no_flags(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    slug = (await api.get(f"/api/v1/workspaces/{team.workspace_id}", headers=team.owner.headers)).json()["slug"]
    await set_plan(api, slug, "legacy-unknown")
    r = await api.post(flags_url(team.workspace_id), json=FLAG, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (403, "PLAN_LIMIT")


@pytest.mark.parametrize("key", ["Upper", "a%00b", "%E2%9C%93", "x" * 101, "-dash"])
async def test_a_key_outside_the_slug_rules_names_nothing(api: httpx.AsyncClient, key: str) -> None:
    owner = await new_account(api)
    ws = (await new_workspace(api, owner))["id"]
    for method in ("GET", "PATCH", "DELETE"):
        r = await api.request(method, flags_url(ws, key), json={} if method == "PATCH" else None, headers=owner.headers)
        assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    r = await api.get(f"/api/v1/workspaces/{ws}/experiments/{key}/results", headers=owner.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    r = await api.get(f"/api/v1/workspaces/{ws}/audit-log", params={"entity_key": key.replace("%00", "\x00")},
                      headers=owner.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
