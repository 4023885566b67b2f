"""A session's workspace reads carry its role and that role's permissions, and the list is exactly what the
server then lets the role do: for each role, one request per permission, compared with the list."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

from api.permissions import ALL, PERMISSIONS, Role
from tests.api.conftest import Team, add_member, error_code, new_account, new_team, unique_email

WS = "/api/v1/workspaces"
Probe = Callable[[httpx.AsyncClient, Team, dict[str, str]], Awaitable[httpx.Response]]


def _ws(team: Team) -> str:
    return f"{WS}/{team.workspace_id}"


async def _fresh_member(api: httpx.AsyncClient, team: Team) -> str:
    return await add_member(api, team.owner, team.workspace_id, await new_account(api), "VIEWER")


async def _update_role(api: httpx.AsyncClient, t: Team, h: dict[str, str]) -> httpx.Response:
    return await api.patch(f"{_ws(t)}/members/{await _fresh_member(api, t)}", json={"role": "DEVELOPER"}, headers=h)


async def _remove(api: httpx.AsyncClient, t: Team, h: dict[str, str]) -> httpx.Response:
    return await api.delete(f"{_ws(t)}/members/{await _fresh_member(api, t)}", headers=h)


async def _transfer(api: httpx.AsyncClient, t: Team, h: dict[str, str]) -> httpx.Response:
    target = await _fresh_member(api, t)
    return await api.post(f"{_ws(t)}/transfer-ownership", json={"member_id": target}, headers=h)


async def _delete(api: httpx.AsyncClient, t: Team, h: dict[str, str]) -> httpx.Response:
    return await api.delete(_ws(t), headers=h)


def _new_key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


# One request per permission of api/permissions.py (a write wherever the permission is one). The last two
# change the caller's role or end the workspace, so they run last, in this order.
PROBES: dict[str, Probe] = {
    "workspace:read": lambda api, t, h: api.get(_ws(t), headers=h),
    "workspace:update": lambda api, t, h: api.patch(_ws(t), json={"description": "changed"}, headers=h),
    "members:read": lambda api, t, h: api.get(f"{_ws(t)}/members", headers=h),
    "members:invite": lambda api, t, h: api.post(f"{_ws(t)}/invites", json={"email": unique_email(), "role": "VIEWER"},
                                                 headers=h),
    "members:update_roles": _update_role,
    "members:remove": _remove,
    "billing:read": lambda api, t, h: api.get(f"{_ws(t)}/billing", headers=h),
    "api_keys:read": lambda api, t, h: api.get(f"{_ws(t)}/api-keys", headers=h),
    "api_keys:write": lambda api, t, h: api.post(f"{_ws(t)}/api-keys", json={"name": "k", "scopes": ["read"]},
                                                 headers=h),
    "flags:read": lambda api, t, h: api.get(f"{_ws(t)}/feature-flags", headers=h),
    "flags:write": lambda api, t, h: api.post(f"{_ws(t)}/feature-flags", json={"key": _new_key()}, headers=h),
    "flags:rollout": lambda api, t, h: api.patch(f"{_ws(t)}/feature-flags/probe", json={"rollout": 30}, headers=h),
    "experiments:read": lambda api, t, h: api.get(f"{_ws(t)}/experiments", headers=h),
    "experiments:write": lambda api, t, h: api.post(f"{_ws(t)}/experiments", json={
        "key": _new_key(), "conversion": {"event_type": "buy"},
        "variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]}, headers=h),
    "experiments:allocation": lambda api, t, h: api.patch(f"{_ws(t)}/experiments/probe", json={"allocation": 40},
                                                          headers=h),
    "events:read": lambda api, t, h: api.get(f"{_ws(t)}/events", headers=h),
    "data:delete": lambda api, t, h: api.post(f"{_ws(t)}/deletions", json={"user_id": "u-probe"}, headers=h),
    "workspace:transfer": _transfer,
    "workspace:delete": _delete,
}  # fmt: skip


def test_every_permission_has_a_probe() -> None:
    assert set(PROBES) == set(ALL)


async def _prepared_team(api: httpx.AsyncClient) -> Team:
    team = await new_team(api, plan="enterprise")
    h = team.owner.headers
    r = await api.post(f"{_ws(team)}/feature-flags", json={"key": "probe"}, headers=h)
    assert r.status_code == 201, r.text
    r = await api.post(f"{_ws(team)}/experiments", json={"key": "probe", "conversion": {"event_type": "buy"},
                       "variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]}, headers=h)  # fmt: skip
    assert r.status_code == 201, r.text
    return team


@pytest.mark.parametrize("role", [r.value for r in Role])
async def test_the_permissions_a_session_is_told_are_what_the_server_allows(api: httpx.AsyncClient, role: str) -> None:
    team = await _prepared_team(api)
    h = team.by_role(role).headers
    r = await api.get(_ws(team), headers=h)
    assert r.status_code == 200, r.text
    told = r.json()
    assert told["role"] == role
    assert told["permissions"] == sorted(told["permissions"]) and len(set(told["permissions"])) == len(
        told["permissions"]
    )
    [listed] = [w for w in (await api.get(WS, headers=h)).json()["items"] if w["id"] == team.workspace_id]
    assert (listed["role"], listed["permissions"]) == (role, told["permissions"])

    allowed = set()
    for permission, probe in PROBES.items():
        answer = await probe(api, team, h)
        assert answer.status_code in (200, 201, 202, 204, 403), (permission, answer.status_code, answer.text)
        if answer.status_code == 403:
            assert error_code(answer) == "FORBIDDEN", (permission, answer.text)
        else:
            allowed.add(permission)
    assert allowed == set(told["permissions"])
    assert allowed == PERMISSIONS[Role(role)]


async def test_current_tells_a_session_its_role(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    slug = f"ws-{uuid.uuid4().hex[:12]}"
    assert (await api.post(WS, json={"name": slug, "slug": slug}, headers=owner.headers)).status_code == 201
    r = await api.get(f"{WS}/current", headers=owner.headers)
    assert (r.json()["role"], r.json()["permissions"]) == ("OWNER", sorted(PERMISSIONS[Role.OWNER]))


async def test_an_api_key_is_told_no_role(api: httpx.AsyncClient) -> None:
    """A key has scopes, not a role: its reads of the workspace carry neither field."""
    team = await new_team(api)
    r = await api.post(f"{_ws(team)}/api-keys", json={"name": "reader", "scopes": ["read"]}, headers=team.owner.headers)
    key = {"X-API-Key": r.json()["key"]}
    for path in (_ws(team), f"{WS}/current"):
        r = await api.get(path, headers=key)
        assert r.status_code == 200, r.text
        assert "role" not in r.json() and "permissions" not in r.json()
