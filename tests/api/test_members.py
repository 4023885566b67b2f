"""Members and roles: add, change roles, remove, leave, transfer ownership, and the rules between roles."""

from __future__ import annotations

import asyncpg
import httpx

from tests.api.conftest import (
    Team,
    add_member,
    demoted_while_waiting,
    error_code,
    new_account,
    new_team,
    new_workspace,
    unique_email,
)

WS = "/api/v1/workspaces"


def members_url(team: Team, member_id: str | None = None) -> str:
    return f"{WS}/{team.workspace_id}/members" + (f"/{member_id}" if member_id else "")


async def test_list_members_shape(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    r = await api.get(members_url(team), headers=team.viewer.headers)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [m["role"] for m in items] == ["OWNER", "ADMIN", "DEVELOPER", "VIEWER"]
    assert all(set(m) == {"id", "user_id", "email", "name", "role", "joined_at"} for m in items)
    assert {m["id"] for m in items} == set(team.member_ids.values())
    r = await api.get(members_url(team), params={"limit": 3}, headers=team.viewer.headers)
    rest = await api.get(members_url(team), params={"cursor": r.json()["next_cursor"]}, headers=team.viewer.headers)
    assert [m["role"] for m in rest.json()["items"]] == ["VIEWER"] and rest.json()["next_cursor"] is None


async def test_add_member_errors(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    stranger = await new_account(api)
    url = members_url(team)
    r = await api.post(url, json={"user_id": team.viewer.id, "role": "VIEWER"}, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (409, "CONFLICT")
    r = await api.post(url, json={"user_id": "00000000-0000-0000-0000-000000000001", "role": "VIEWER"},
                       headers=team.owner.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "USE_INVITATION")  # an unknown user is a stranger too
    r = await api.post(url, json={"user_id": stranger.id, "role": "KING"}, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    r = await api.post(url, json={"user_id": "not-a-uuid", "role": "VIEWER"}, headers=team.owner.headers)
    assert (r.status_code, r.json()["error"]["details"]["field"]) == (400, "user_id")


async def test_only_an_owner_grants_owner_and_admins_grant_up_to_admin(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    invites = f"{WS}/{team.workspace_id}/invites"
    r = await api.post(invites, json={"email": unique_email(), "role": "OWNER"}, headers=team.admin.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.post(invites, json={"email": unique_email(), "role": "ADMIN"}, headers=team.admin.headers)
    assert r.status_code == 201
    r = await api.patch(members_url(team, team.member_ids["VIEWER"]), json={"role": "OWNER"},
                        headers=team.admin.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.patch(members_url(team, team.member_ids["VIEWER"]), json={"role": "ADMIN"},
                        headers=team.admin.headers)  # fmt: skip
    assert (r.status_code, r.json()["role"]) == (200, "ADMIN")
    r = await api.patch(members_url(team, team.member_ids["DEVELOPER"]), json={"role": "OWNER"},
                        headers=team.owner.headers)  # fmt: skip
    assert (r.status_code, r.json()["role"]) == (200, "OWNER")


async def test_nobody_changes_their_own_role(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    for role in ("OWNER", "ADMIN"):
        r = await api.patch(members_url(team, team.member_ids[role]), json={"role": "VIEWER"},
                            headers=team.by_role(role).headers)  # fmt: skip
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN"), role


async def test_admin_edits_only_members_at_or_below_admin(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    other_admin = await new_account(api)
    other_admin_id = await add_member(api, team.owner, team.workspace_id, other_admin, "ADMIN")
    r = await api.patch(members_url(team, team.member_ids["OWNER"]), json={"role": "ADMIN"},
                        headers=team.admin.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.delete(members_url(team, team.member_ids["OWNER"]), headers=team.admin.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.patch(members_url(team, other_admin_id), json={"role": "DEVELOPER"}, headers=team.admin.headers)
    assert (r.status_code, r.json()["role"]) == (200, "DEVELOPER")
    assert (await api.delete(members_url(team, other_admin_id), headers=team.admin.headers)).status_code == 204


async def test_last_owner_is_never_removed_or_demoted(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    owner_id = team.member_ids["OWNER"]
    r = await api.delete(members_url(team, owner_id), headers=team.owner.headers)  # leaving
    assert (r.status_code, error_code(r)) == (400, "LAST_OWNER")
    # With a second owner, the first may be demoted by the second, but then not the second.
    second = team.member_ids["ADMIN"]
    await api.patch(members_url(team, second), json={"role": "OWNER"}, headers=team.owner.headers)
    r = await api.patch(members_url(team, owner_id), json={"role": "ADMIN"}, headers=team.admin.headers)
    assert (r.status_code, r.json()["role"]) == (200, "ADMIN")
    r = await api.delete(members_url(team, second), headers=team.admin.headers)  # now an OWNER
    assert (r.status_code, error_code(r)) == (400, "LAST_OWNER")


async def test_members_may_leave_and_removed_members_lose_access(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    r = await api.delete(members_url(team, team.member_ids["VIEWER"]), headers=team.viewer.headers)
    assert r.status_code == 204
    assert (await api.get(f"{WS}/{team.workspace_id}", headers=team.viewer.headers)).status_code == 404
    r = await api.delete(members_url(team, team.member_ids["DEVELOPER"]), headers=team.admin.headers)
    assert r.status_code == 204
    assert (await api.get(f"{WS}/{team.workspace_id}", headers=team.developer.headers)).status_code == 404


async def test_transfer_ownership(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    url = f"{WS}/{team.workspace_id}/transfer-ownership"
    r = await api.post(url, json={"member_id": team.member_ids["DEVELOPER"]}, headers=team.admin.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.post(url, json={"member_id": team.member_ids["OWNER"]}, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    outsider_ws = await new_workspace(api, team.viewer)
    outsider_member = (await api.get(f"{WS}/{outsider_ws['id']}/members", headers=team.viewer.headers)).json()
    r = await api.post(url, json={"member_id": outsider_member["items"][0]["id"]}, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")

    r = await api.post(url, json={"member_id": team.member_ids["DEVELOPER"]}, headers=team.owner.headers)
    assert (r.status_code, r.json()["role"], r.json()["user_id"]) == (200, "OWNER", team.developer.id)
    listed = (await api.get(members_url(team), headers=team.owner.headers)).json()["items"]
    roles = {m["user_id"]: m["role"] for m in listed}
    assert (roles[team.owner.id], roles[team.developer.id]) == ("ADMIN", "OWNER")


async def test_member_count_never_exceeds_the_plan(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)  # free: 5 members
    for _ in range(4):
        await add_member(api, owner, ws["id"], await new_account(api), "VIEWER")
    colleague = await new_account(api)
    await add_member(api, owner, (await new_workspace(api, owner))["id"], colleague, "VIEWER")
    r = await api.post(f"{WS}/{ws['id']}/members", json={"user_id": colleague.id, "role": "VIEWER"},
                       headers=owner.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "PLAN_LIMIT")
    assert r.json()["error"]["details"] == {"limit": "max_members", "max": 5}


async def test_a_stranger_is_never_added_directly_only_invited(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    stranger = await new_account(api)
    for role in ("OWNER", "ADMIN", "VIEWER"):
        r = await api.post(members_url(team), json={"user_id": stranger.id, "role": role}, headers=team.owner.headers)
        assert (r.status_code, error_code(r)) == (403, "USE_INVITATION"), role
        assert "invite" in r.json()["error"]["message"]
    assert (await api.get(WS, headers=stranger.headers)).json()["items"] == []
    # A colleague from another of my workspaces may be added directly, but never as OWNER.
    colleague = await new_account(api)
    await add_member(api, team.owner, (await new_workspace(api, team.owner))["id"], colleague, "VIEWER")
    r = await api.post(members_url(team), json={"user_id": colleague.id, "role": "OWNER"}, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (403, "USE_INVITATION")
    r = await api.post(members_url(team), json={"user_id": colleague.id, "role": "ADMIN"}, headers=team.owner.headers)
    assert (r.status_code, r.json()["role"]) == (201, "ADMIN")


async def test_adding_uses_the_role_read_under_the_lock(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    colleague = await new_account(api)
    await add_member(api, team.admin, (await new_workspace(api, team.admin))["id"], colleague, "VIEWER")
    r = await demoted_while_waiting(pool, team, api.post(members_url(team), json={"user_id": colleague.id,
                                    "role": "ADMIN"}, headers=team.admin.headers))  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
