"""Tenant isolation: for every route taking an id, the OWNER of workspace B gets 404 for A's resources
(never 403: no existence leak), whether the id is in A's path or smuggled under B's path; and A is unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.api.conftest import Account, error_code, new_account, new_team, new_workspace, unique_email

WS = "/api/v1/workspaces"


@dataclass
class World:
    a: str  # workspace ids
    b: str
    a_owner: Account
    b_owner: Account
    a_member: str  # a member id in A
    a_key: str  # a key id in A
    a_key_plaintext: str
    a_invitation: str


async def world(api: httpx.AsyncClient) -> World:
    team = await new_team(api)
    b_owner = await new_account(api)
    b = (await new_workspace(api, b_owner, plan="pro"))["id"]
    key = (await api.post(f"{WS}/{team.workspace_id}/api-keys", json={"name": "a", "scopes": ["read"]},
                          headers=team.owner.headers)).json()  # fmt: skip
    invitation = (await api.post(f"{WS}/{team.workspace_id}/invites", json={"email": unique_email()},
                                 headers=team.owner.headers)).json()  # fmt: skip
    return World(team.workspace_id, b, team.owner, b_owner, team.member_ids["VIEWER"], key["id"], key["key"],
                 invitation["id"])  # fmt: skip


def requests(w: World) -> list[tuple[str, str, dict[str, object] | None]]:
    a, b, m, k = w.a, w.b, w.a_member, w.a_key
    return [
        ("GET", f"{WS}/{a}", None),
        ("PATCH", f"{WS}/{a}", {"name": "pwned"}),
        ("DELETE", f"{WS}/{a}", None),
        ("POST", f"{WS}/{a}/archive", None),
        ("POST", f"{WS}/{a}/restore", None),
        ("GET", f"{WS}/{a}/members", None),
        ("POST", f"{WS}/{a}/members", {"user_id": w.b_owner.id, "role": "OWNER"}),
        ("PATCH", f"{WS}/{a}/members/{m}", {"role": "ADMIN"}),
        ("DELETE", f"{WS}/{a}/members/{m}", None),
        ("PATCH", f"{WS}/{b}/members/{m}", {"role": "ADMIN"}),
        ("DELETE", f"{WS}/{b}/members/{m}", None),
        ("POST", f"{WS}/{a}/transfer-ownership", {"member_id": m}),
        ("POST", f"{WS}/{b}/transfer-ownership", {"member_id": m}),
        ("POST", f"{WS}/{a}/invites", {"email": unique_email()}),
        ("POST", f"{WS}/{a}/members/invite", {"email": unique_email()}),
        ("GET", f"{WS}/{a}/invites", None),
        ("DELETE", f"{WS}/invitations/{w.a_invitation}", None),
        ("GET", f"{WS}/{a}/api-keys", None),
        ("POST", f"{WS}/{a}/api-keys", {"name": "x", "scopes": ["read"]}),
        ("GET", f"{WS}/{a}/api-keys/{k}", None),
        ("PUT", f"{WS}/{a}/api-keys/{k}", {"name": "x"}),
        ("DELETE", f"{WS}/{a}/api-keys/{k}", None),
        ("POST", f"{WS}/{a}/api-keys/{k}/rotate", None),
        ("GET", f"{WS}/{b}/api-keys/{k}", None),
        ("PUT", f"{WS}/{b}/api-keys/{k}", {"name": "x"}),
        ("DELETE", f"{WS}/{b}/api-keys/{k}", None),
        ("POST", f"{WS}/{b}/api-keys/{k}/rotate", None),
        ("GET", f"/api/v1/api-keys?workspace_id={a}", None),
        ("POST", "/api/v1/api-keys", {"name": "x", "scopes": ["read"], "workspace_id": a}),
        ("GET", f"/api/v1/api-keys/{k}", None),
        ("PUT", f"/api/v1/api-keys/{k}", {"name": "x"}),
        ("DELETE", f"/api/v1/api-keys/{k}", None),
        ("POST", f"/api/v1/api-keys/{k}/rotate", None),
        ("GET", f"{WS}/{a}/usage", None),
        ("GET", f"{WS}/{a}/billing", None),
    ]


async def test_a_member_of_b_gets_404_for_everything_of_a(api: httpx.AsyncClient) -> None:
    w = await world(api)
    before = (await api.get(f"{WS}/{w.a}/members", headers=w.a_owner.headers)).json()
    for method, url, payload in requests(w):
        r = await api.request(method, url, json=payload, headers=w.b_owner.headers)
        assert (r.status_code, error_code(r)) == (404, "NOT_FOUND"), (method, url, r.text)
    # Nothing of A changed.
    assert (await api.get(f"{WS}/{w.a}/members", headers=w.a_owner.headers)).json() == before
    a = (await api.get(f"{WS}/{w.a}", headers=w.a_owner.headers)).json()
    assert (a["name"], a["is_active"]) == (a["slug"], True)
    key = (await api.get(f"{WS}/{w.a}/api-keys/{w.a_key}", headers=w.a_owner.headers)).json()
    assert (key["name"], key["is_active"]) == ("a", True)
    invites = (await api.get(f"{WS}/{w.a}/invites", headers=w.a_owner.headers)).json()["items"]
    assert [i["id"] for i in invites] == [w.a_invitation]


async def test_a_key_of_b_sees_nothing_of_a(api: httpx.AsyncClient) -> None:
    w = await world(api)
    b_key = (await api.post(f"{WS}/{w.b}/api-keys", json={"name": "b", "scopes": ["admin"]},
                            headers=w.b_owner.headers)).json()["key"]  # fmt: skip
    for url in (f"{WS}/{w.a}", f"{WS}/{w.a}/usage", f"{WS}/{w.a}/billing"):
        r = await api.get(url, headers={"X-API-Key": b_key})
        assert (r.status_code, error_code(r)) == (404, "NOT_FOUND"), url
    r = await api.get(f"{WS}/current", headers={"X-API-Key": b_key})
    assert r.json()["id"] == w.b


async def test_unknown_ids_are_404_too(api: httpx.AsyncClient) -> None:
    me = await new_account(api)
    missing = "00000000-0000-0000-0000-000000000000"
    for url in (f"{WS}/{missing}", f"{WS}/{missing}/members", f"/api/v1/api-keys/{missing}", f"{WS}/not-a-uuid"):
        r = await api.get(url, headers=me.headers)
        assert (r.status_code, error_code(r)) == (404, "NOT_FOUND"), url
