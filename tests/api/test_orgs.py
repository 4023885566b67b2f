"""Organizations: create, read, rename, delete; members and their org roles; workspaces made the old way
get an org of their own; an org OWNER or ADMIN acts on every workspace of the org, a MEMBER does not."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
import httpx
import pytest

from api.app import create_app
from eventplane.settings import Secret, Settings
from tests.api.conftest import client_for, error_code, new_account, new_workspace
from tests.api.org_support import ORGS, OWS, new_org, org_token, provision

FIELDS = {"id", "name", "plan", "limits", "max_workspaces", "workspaces", "created_at", "updated_at"}


async def test_the_creator_is_owner_and_the_change_is_audited(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    owner = await new_account(api)
    r = await api.post(ORGS, json={"name": "Platform"}, headers=owner.headers)
    assert r.status_code == 201
    org = r.json()
    assert set(org) == FIELDS
    assert (org["name"], org["plan"], org["max_workspaces"], org["workspaces"]) == ("Platform", "free", 5, 0)
    members = (await api.get(f"{ORGS}/{org['id']}/members", headers=owner.headers)).json()["items"]
    assert [(m["user_id"], m["role"]) for m in members] == [(owner.id, "OWNER")]
    listed = (await api.get(ORGS, headers=owner.headers)).json()["items"]
    assert [o["id"] for o in listed] == [org["id"]]
    entry = await pool.fetchrow("SELECT action, entity_type, actor_user_id::text FROM audit_log WHERE org_id = $1",
                                uuid.UUID(org["id"]))  # fmt: skip
    assert entry is not None and tuple(entry.values()) == ("create", "org", owner.id)


async def test_a_workspace_made_the_old_way_gets_an_org_of_its_own(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    [org] = (await api.get(ORGS, headers=owner.headers)).json()["items"]
    assert (org["name"], org["workspaces"]) == (ws["name"], 1)
    listed = (await api.get(OWS, params={"org_id": org["id"]}, headers=owner.headers)).json()["items"]
    assert [w["id"] for w in listed] == [ws["id"]]


@pytest.mark.parametrize(("role", "read", "rename", "delete"), [
    ("OWNER", 200, 200, 204), ("ADMIN", 200, 200, 403), ("MEMBER", 200, 403, 403),
])  # fmt: skip
async def test_every_org_role(api: httpx.AsyncClient, role: str, read: int, rename: int, delete: int) -> None:
    org = await new_org(api)
    who = org.by_role(role).headers
    assert (await api.get(f"{ORGS}/{org.id}", headers=who)).status_code == read
    r = await api.patch(f"{ORGS}/{org.id}", json={"name": "Renamed"}, headers=who)
    assert r.status_code == rename
    if rename == 403:
        assert error_code(r) == "FORBIDDEN"
    assert (await api.delete(f"{ORGS}/{org.id}", headers=who)).status_code == delete


async def test_an_org_with_workspaces_is_not_deleted(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    await provision(api, org.id, org.owner.headers)
    r = await api.delete(f"{ORGS}/{org.id}", headers=org.owner.headers)
    assert (r.status_code, error_code(r)) == (409, "ORG_NOT_EMPTY")


async def test_member_rules(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    members = (await api.get(f"{ORGS}/{org.id}/members", headers=org.owner.headers)).json()["items"]
    ids = {m["role"]: m["id"] for m in members}
    outsider = await new_account(api)
    # An ADMIN grants no OWNER and edits no OWNER; the last OWNER stays.
    r = await api.post(f"{ORGS}/{org.id}/members", json={"user_id": outsider.id, "role": "OWNER"},
                       headers=org.admin.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.delete(f"{ORGS}/{org.id}/members/{ids['OWNER']}", headers=org.admin.headers)
    assert r.status_code == 403
    r = await api.patch(f"{ORGS}/{org.id}/members/{ids['MEMBER']}", json={"role": "ADMIN"}, headers=org.admin.headers)
    assert (r.status_code, r.json()["role"]) == (200, "ADMIN")
    r = await api.patch(f"{ORGS}/{org.id}/members/{ids['ADMIN']}", json={"role": "OWNER"}, headers=org.owner.headers)
    assert r.status_code == 200
    r = await api.delete(f"{ORGS}/{org.id}/members/{ids['ADMIN']}", headers=org.admin.headers)
    assert r.status_code == 403  # nobody removes themselves this way
    r = await api.patch(f"{ORGS}/{org.id}/members/{ids['OWNER']}", json={"role": "MEMBER"}, headers=org.admin.headers)
    assert r.status_code == 200  # two OWNERs: one may be demoted
    r = await api.patch(f"{ORGS}/{org.id}/members/{ids['ADMIN']}", json={"role": "MEMBER"}, headers=org.owner.headers)
    assert r.status_code == 403  # the former OWNER is now a MEMBER: no org:members


async def test_the_only_owner_is_neither_demoted_nor_removed(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    members = (await api.get(f"{ORGS}/{org.id}/members", headers=org.owner.headers)).json()["items"]
    owner_id = next(m["id"] for m in members if m["role"] == "OWNER")
    for who in (org.owner, org.admin):
        r = await api.patch(f"{ORGS}/{org.id}/members/{owner_id}", json={"role": "MEMBER"}, headers=who.headers)
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
        r = await api.delete(f"{ORGS}/{org.id}/members/{owner_id}", headers=who.headers)
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    roles = [m["role"] for m in (await api.get(f"{ORGS}/{org.id}/members", headers=org.owner.headers)).json()["items"]]
    assert roles.count("OWNER") == 1


@pytest.mark.parametrize(("role", "status"), [("OWNER", 200), ("ADMIN", 200), ("MEMBER", 404)])
async def test_org_admins_act_on_every_workspace_of_the_org(api: httpx.AsyncClient, role: str, status: int) -> None:
    org = await new_org(api)
    ws = await provision(api, org.id, org.owner.headers)
    who = org.by_role(role).headers
    assert (await api.get(f"/api/v1/workspaces/{ws['id']}", headers=who)).status_code == status
    r = await api.patch(f"/api/v1/workspaces/{ws['id']}", json={"description": "by org"}, headers=who)
    assert r.status_code == status
    r = await api.post(f"/api/v1/workspaces/{ws['id']}/api-keys", json={"name": "k", "scopes": ["write"]},
                       headers=who)  # fmt: skip
    assert r.status_code == (201 if status == 200 else 404)


async def test_nothing_of_another_org_is_visible(api: httpx.AsyncClient) -> None:
    a, b = await new_org(api, "A"), await new_org(api, "B")
    token_a = await org_token(api, a)
    ws_b = await provision(api, b.id, b.owner.headers)
    for who in (a.owner.headers, token_a):
        assert (await api.get(f"{ORGS}/{b.id}", headers=who)).status_code == 404
        assert (await api.get(f"{ORGS}/{b.id}/members", headers=who)).status_code == 404
        assert (await api.get(OWS, params={"org_id": b.id}, headers=who)).status_code == 404
        for path in ("", "/access-token", "/rotate-secret", "/archive", "/restore", "/api-keys"):
            method = "GET" if path == "" else "POST"
            body = {"name": "k", "scopes": ["write"]} if path == "/api-keys" else None
            r = await api.request(method, f"{OWS}/{ws_b['id']}{path}", json=body, headers=who)
            assert (r.status_code, error_code(r)) == (404, "NOT_FOUND"), path
        r = await api.patch(f"{OWS}/{ws_b['id']}", json={"name": "x"}, headers=who)
        assert r.status_code == 404
        r = await api.post(OWS, json={"name": "x", "org_id": b.id}, headers=who)
        assert r.status_code == 404
    assert (await api.get(f"/api/v1/workspaces/{ws_b['id']}", headers=a.owner.headers)).status_code == 404


async def test_orgs_and_org_workspaces_pass_the_gates_workspace_creation_has(api_settings: Settings) -> None:
    """The review found them open: with ADMIN_TOKEN set, or verified emails required, POST /orgs and
    POST /org-workspaces made workspaces that POST /workspaces would have refused."""
    app = create_app(replace(api_settings, admin_token=Secret("s3cret-admin"), require_verified_email=True))
    async with app.router.lifespan_context(app), client_for(app) as api:
        owner = await new_account(api)
        r = await api.post(ORGS, json={"name": "P"}, headers=owner.headers)
        assert (r.status_code, error_code(r)) == (403, "EMAIL_NOT_VERIFIED")
    app = create_app(replace(api_settings, admin_token=Secret("s3cret-admin")))
    async with app.router.lifespan_context(app), client_for(app) as api:
        owner = await new_account(api)
        r = await api.post(ORGS, json={"name": "P"}, headers=owner.headers)
        assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
        admin = {"x-admin-token": "s3cret-admin"}
        r = await api.post(ORGS, json={"name": "P"}, headers={**owner.headers, **admin})
        assert r.status_code == 201, r.text
        org_id = r.json()["id"]
        r = await api.post(OWS, json={"name": "C", "org_id": org_id}, headers=owner.headers)
        assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
        r = await api.post(OWS, json={"name": "C", "org_id": org_id}, headers={**owner.headers, **admin})
        assert r.status_code == 201, r.text
