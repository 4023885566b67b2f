"""Each role gets exactly its permissions: the table itself, and what each role can do over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

from api.permissions import PERMISSIONS, Role
from tests.api.conftest import Team, add_member, new_account, new_team, new_workspace, unique_email

WS = "/api/v1/workspaces"

_DEFINITIONS = {
    "flags:read",
    "flags:write",
    "flags:rollout",
    "experiments:read",
    "experiments:write",
    "experiments:allocation",
    "events:read",
}
EXPECTED = {
    "OWNER": {"workspace:read", "workspace:update", "workspace:delete", "workspace:transfer", "members:read",
              "members:invite", "members:update_roles", "members:remove", "billing:read", "api_keys:read",
              "api_keys:write", "data:delete"} | _DEFINITIONS,
    "ADMIN": {"workspace:read", "workspace:update", "members:read", "members:invite", "members:update_roles",
              "members:remove", "billing:read", "api_keys:read", "api_keys:write", "data:delete"} | _DEFINITIONS,
    "DEVELOPER": {"workspace:read", "members:read", "api_keys:read", "api_keys:write"} | _DEFINITIONS,
    "VIEWER": {"workspace:read", "members:read", "api_keys:read", "flags:read", "experiments:read", "events:read"},
}  # fmt: skip


def test_the_table() -> None:
    assert {role.value: set(perms) for role, perms in PERMISSIONS.items()} == EXPECTED


Operation = Callable[[httpx.AsyncClient, Team, dict[str, str]], Awaitable[httpx.Response]]


async def _fresh_member(api: httpx.AsyncClient, team: Team) -> str:
    return await add_member(api, team.owner, team.workspace_id, await new_account(api), "VIEWER")


async def _update_role(api: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
    target = await _fresh_member(api, team)
    return await api.patch(f"{WS}/{team.workspace_id}/members/{target}", json={"role": "VIEWER"}, headers=h)


async def _remove(api: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
    target = await _fresh_member(api, team)
    return await api.delete(f"{WS}/{team.workspace_id}/members/{target}", headers=h)


async def _transfer(api: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
    target = await _fresh_member(api, team)
    return await api.post(f"{WS}/{team.workspace_id}/transfer-ownership", json={"member_id": target}, headers=h)


OPERATIONS: dict[str, tuple[Operation, set[str]]] = {
    "workspace:read": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}", headers=h), set(EXPECTED)),
    "usage": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/usage", headers=h), set(EXPECTED)),
    "workspace:update": (lambda api, t, h: api.patch(f"{WS}/{t.workspace_id}", json={"name": "n"}, headers=h),
                         {"OWNER", "ADMIN"}),
    "archive": (lambda api, t, h: api.post(f"{WS}/{t.workspace_id}/archive", headers=h), {"OWNER", "ADMIN"}),
    "restore": (lambda api, t, h: api.post(f"{WS}/{t.workspace_id}/restore", headers=h), {"OWNER", "ADMIN"}),
    "members:read": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/members", headers=h), set(EXPECTED)),
    "members:add": (lambda api, t, h: _add(api, t, h), {"OWNER", "ADMIN"}),
    "members:invite": (lambda api, t, h: api.post(f"{WS}/{t.workspace_id}/invites",
                       json={"email": unique_email(), "role": "VIEWER"}, headers=h), {"OWNER", "ADMIN"}),
    "invites:read": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/invites", headers=h), set(EXPECTED)),
    "members:update_roles": (_update_role, {"OWNER", "ADMIN"}),
    "members:remove": (_remove, {"OWNER", "ADMIN"}),
    "billing:read": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/billing", headers=h), {"OWNER", "ADMIN"}),
    "api_keys:read": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/api-keys", headers=h), set(EXPECTED)),
    "api_keys:write": (lambda api, t, h: api.post(f"{WS}/{t.workspace_id}/api-keys",
                       json={"name": "k", "scopes": ["read"]}, headers=h), {"OWNER", "ADMIN", "DEVELOPER"}),
    "flags:read": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/feature-flags", headers=h), set(EXPECTED)),
    "flags:write": (lambda api, t, h: api.post(f"{WS}/{t.workspace_id}/feature-flags",
                    json={"key": f"f-{uuid.uuid4().hex[:8]}"}, headers=h), {"OWNER", "ADMIN", "DEVELOPER"}),
    "experiments:read": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/experiments", headers=h), set(EXPECTED)),
    "experiments:write": (lambda api, t, h: api.post(f"{WS}/{t.workspace_id}/experiments",
                          json={"key": f"e-{uuid.uuid4().hex[:8]}", "conversion": {"event_type": "buy"},
                                "variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]}, headers=h),
                          {"OWNER", "ADMIN", "DEVELOPER"}),
    "audit-log": (lambda api, t, h: api.get(f"{WS}/{t.workspace_id}/audit-log", headers=h), set(EXPECTED)),
    "workspace:transfer": (_transfer, {"OWNER"}),
}  # fmt: skip


async def _add(api: httpx.AsyncClient, team: Team, h: dict[str, str]) -> httpx.Response:
    """Add directly a user who shares a workspace (of their own) with the caller, as direct adds require."""
    user = await new_account(api)
    theirs = await new_workspace(api, user)
    caller_email = (await api.get("/api/v1/me", headers=h)).json()["email"]
    r = await api.post(f"{WS}/{theirs['id']}/invites", json={"email": caller_email, "role": "VIEWER"},
                       headers=user.headers)  # fmt: skip
    assert (await api.post(f"{WS}/invites/{r.json()['token']}/accept", headers=h)).status_code == 200
    return await api.post(f"{WS}/{team.workspace_id}/members", json={"user_id": user.id, "role": "VIEWER"}, headers=h)


@pytest.mark.parametrize("role", [r.value for r in Role])
async def test_each_role_can_do_exactly_its_operations(api: httpx.AsyncClient, role: str) -> None:
    team = await new_team(api, plan="enterprise")
    h = team.by_role(role).headers
    outcomes = {}
    for name, (operation, _) in OPERATIONS.items():
        if name == "workspace:transfer":
            continue  # last: it changes the caller's role
        r = await operation(api, team, h)
        outcomes[name] = r.status_code < 300
        assert r.status_code in (200, 201, 204, 403), (name, r.status_code, r.text)
    outcomes["workspace:transfer"] = (await _transfer(api, team, h)).status_code == 200
    assert {name for name, ok in outcomes.items() if ok} == {n for n, (_, allowed) in OPERATIONS.items()
                                                             if role in allowed}  # fmt: skip


@pytest.mark.parametrize("role", ["ADMIN", "DEVELOPER", "VIEWER"])
async def test_only_the_owner_deletes(api: httpx.AsyncClient, role: str) -> None:
    team = await new_team(api)
    r = await api.delete(f"{WS}/{team.workspace_id}", headers=team.by_role(role).headers)
    assert r.status_code == 403
    assert (await api.delete(f"{WS}/{team.workspace_id}", headers=team.owner.headers)).status_code == 204


async def test_a_plain_signup_has_no_workspace_rights(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    stranger = await new_account(api)
    for name, (operation, _) in OPERATIONS.items():
        r = await operation(api, team, stranger.headers)
        assert r.status_code == 404, (name, r.status_code)
