"""Workspaces: create, list, read, update, archive/restore, delete, the key's own workspace, limits."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.permissions import PERMISSIONS, Role
from eventplane.settings import Secret, Settings
from tests.api.conftest import (
    client_for,
    error_code,
    new_account,
    new_team,
    new_workspace,
    unique_slug,
)
from tests.conftest import make_tenant

WS = "/api/v1/workspaces"
FIELDS = {"id", "name", "slug", "description", "plan", "is_active", "max_experiments", "max_feature_flags",
          "max_members", "max_api_keys", "limits", "created_at", "updated_at"}  # fmt: skip


async def test_create_returns_the_workspace_with_plan_limits_and_makes_me_owner(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    slug = unique_slug()
    r = await api.post(WS, json={"name": "Acme", "slug": slug, "description": "d"}, headers=owner.headers)
    assert r.status_code == 201
    ws = r.json()
    assert set(ws) == FIELDS
    assert (ws["name"], ws["slug"], ws["description"], ws["plan"], ws["is_active"]) == ("Acme", slug, "d", "free", True)
    assert ws["limits"] == {"max_experiments": 10, "max_feature_flags": 50, "max_members": 5, "max_api_keys": 3,
                            "api_access": True, "events_per_second": 1000, "burst": 20000}  # fmt: skip
    # The quickstart reads the limits at the top level.
    assert (ws["max_experiments"], ws["max_feature_flags"], ws["max_members"], ws["max_api_keys"]) == (10, 50, 5, 3)
    r = await api.get(f"{WS}/{ws['id']}/members", headers=owner.headers)
    [me] = r.json()["items"]
    assert (me["user_id"], me["role"]) == (owner.id, "OWNER")


async def test_create_validation(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    bad = [
        ({"name": "", "slug": unique_slug()}, "name"),
        ({"name": "x" * 101, "slug": unique_slug()}, "name"),
        ({"name": "x", "slug": "Upper-Case"}, "slug"),
        ({"name": "x", "slug": "a" * 51}, "slug"),
        ({"name": "x", "slug": ""}, "slug"),
        ({"name": "x", "slug": unique_slug(), "plan": "platinum"}, "plan"),
        ({"name": "x", "slug": unique_slug(), "owner": owner.id}, "owner"),
        ({"name": "x", "slug": unique_slug(), "is_active": False}, "is_active"),
    ]
    for payload, field in bad:
        r = await api.post(WS, json=payload, headers=owner.headers)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), payload
        assert r.json()["error"]["details"]["field"] == field


async def test_duplicate_slug_is_409(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    r = await api.post(WS, json={"name": "again", "slug": ws["slug"]}, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (409, "CONFLICT")


async def test_plans_have_their_limits(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    pro = await new_workspace(api, owner, plan="pro")
    enterprise = await new_workspace(api, owner, plan="enterprise")
    assert pro["limits"]["max_members"] > 5 and enterprise["limits"]["max_members"] > pro["limits"]["max_members"]


async def test_admin_token_required_when_configured(api_settings: Settings) -> None:
    app = create_app(replace(api_settings, admin_token=Secret("s3cret-admin")))
    async with app.router.lifespan_context(app), client_for(app) as api:
        owner = await new_account(api)
        body = {"name": "x", "slug": unique_slug()}
        for headers in ({}, {"x-admin-token": "wrong"}):
            r = await api.post(WS, json=body, headers={**owner.headers, **headers})
            assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
        r = await api.post(WS, json=body, headers={**owner.headers, "x-admin-token": "s3cret-admin"})
        assert r.status_code == 201


async def test_list_mine_only_with_pagination(api: httpx.AsyncClient) -> None:
    me, other = await new_account(api), await new_account(api)
    mine = [(await new_workspace(api, me))["id"] for _ in range(3)]
    await new_workspace(api, other)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await api.get(WS, params=params, headers=me.headers)
        assert r.status_code == 200
        page = r.json()
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == mine
    for params in ({"limit": "0"}, {"limit": "x"}, {"cursor": "!!"}, {"cursor": "bm90IGpzb24"}):
        r = await api.get(WS, params=params, headers=me.headers)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), params


async def test_get_and_patch(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    url = f"{WS}/{ws['id']}"
    # A session's read adds its role there and that role's permissions (tests/api/test_workspace_role.py).
    read = (await api.get(url, headers=owner.headers)).json()
    assert (read.pop("role"), read.pop("permissions")) == ("OWNER", sorted(PERMISSIONS[Role.OWNER]))
    assert read == ws
    new_slug = unique_slug()
    r = await api.patch(url, json={"name": "Renamed", "slug": new_slug, "description": None}, headers=owner.headers)
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["slug"], r.json()["description"]) == ("Renamed", new_slug, None)
    assert r.json()["updated_at"] > ws["updated_at"]
    r = await api.patch(url, json={"is_active": False}, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    other = await new_workspace(api, owner)
    r = await api.patch(url, json={"slug": other["slug"]}, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (409, "CONFLICT")


async def test_without_admin_token_nobody_picks_a_plan_but_the_default(api: httpx.AsyncClient) -> None:
    team = await new_team(api, plan="free")
    url = f"{WS}/{team.workspace_id}"
    r = await api.patch(url, json={"plan": "enterprise"}, headers=team.admin.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    for who in (team.owner, team.admin):
        r = await api.patch(url, json={"plan": "enterprise"}, headers={**who.headers, "x-admin-token": "guess"})
        assert r.status_code == 403
    r = await api.patch(url, json={"plan": "enterprise"}, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (403, "PLAN_CHANGE_FORBIDDEN")
    assert "eventplane workspace set-plan" in r.json()["error"]["message"]
    for plan in ("pro", "enterprise"):
        r = await api.post(WS, json={"name": "x", "slug": unique_slug(), "plan": plan}, headers=team.owner.headers)
        assert (r.status_code, error_code(r)) == (403, "PLAN_CHANGE_FORBIDDEN")
    r = await api.get(url, headers=team.owner.headers)
    assert (r.json()["plan"], r.json()["max_members"]) == ("free", 5)
    # The quickstart's explicit default plan is fine.
    r = await api.post(WS, json={"name": "x", "slug": unique_slug(), "plan": "free"}, headers=team.owner.headers)
    assert (r.status_code, r.json()["plan"]) == (201, "free")
    r = await api.patch(url, json={"plan": "free"}, headers=team.owner.headers)
    assert (r.status_code, r.json()["plan"]) == (200, "free")


async def test_with_admin_token_the_owner_changes_the_plan_with_it(api_settings: Settings) -> None:
    app = create_app(replace(api_settings, admin_token=Secret("s3cret-admin")))
    admin = {"x-admin-token": "s3cret-admin"}
    async with app.router.lifespan_context(app), client_for(app) as api:
        owner = await new_account(api)
        r = await api.post(WS, json={"name": "x", "slug": unique_slug(), "plan": "pro"},
                           headers={**owner.headers, **admin})  # fmt: skip
        assert (r.status_code, r.json()["plan"], r.json()["max_api_keys"]) == (201, "pro", 25)
        url = f"{WS}/{r.json()['id']}"
        r = await api.patch(url, json={"plan": "enterprise"}, headers={**owner.headers, "x-admin-token": "wrong"})
        assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
        r = await api.patch(url, json={"plan": "enterprise"}, headers={**owner.headers, **admin})
        assert (r.status_code, r.json()["plan"], r.json()["limits"]["max_members"]) == (200, "enterprise", 1000)


async def test_archive_and_restore(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    r = await api.post(f"{WS}/{ws['id']}/archive", headers=owner.headers)
    assert (r.status_code, r.json()["is_active"]) == (200, False)
    assert (await api.get(f"{WS}/{ws['id']}", headers=owner.headers)).json()["is_active"] is False
    r = await api.post(f"{WS}/{ws['id']}/restore", headers=owner.headers)
    assert (r.status_code, r.json()["is_active"]) == (200, True)


async def test_delete_is_owner_only_and_removes_everything(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    url = f"{WS}/{team.workspace_id}"
    r = await api.delete(url, headers=team.admin.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    assert (await api.delete(url, headers=team.owner.headers)).status_code == 204
    assert (await api.get(url, headers=team.owner.headers)).status_code == 404
    assert await pool.fetchval("SELECT count(*) FROM workspace_members WHERE workspace_id = $1", team.workspace_id) == 0


async def test_current_with_an_api_key(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool, scopes=["read"])
    for headers in ({"X-API-Key": tenant.key}, {"Authorization": f"Bearer {tenant.key}"}):
        r = await api.get(f"{WS}/current", headers=headers)
        assert (r.status_code, r.json()["id"]) == (200, tenant.workspace_id)
    # The same key reads its own workspace by id, and nobody else's.
    assert (await api.get(f"{WS}/{tenant.workspace_id}", headers={"X-API-Key": tenant.key})).status_code == 200
    other = await make_tenant(pool)
    r = await api.get(f"{WS}/{other.workspace_id}", headers={"X-API-Key": tenant.key})
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    # Any active key learns which workspace it belongs to, whatever its scopes; reading it by id needs
    # workspace:read, and a key may never update it.
    track_only = await make_tenant(pool, scopes=["track:write"])
    r = await api.get(f"{WS}/current", headers={"X-API-Key": track_only.key})
    assert (r.status_code, r.json()["id"], r.json()["max_api_keys"]) == (200, track_only.workspace_id, 3)
    r = await api.get(f"{WS}/{track_only.workspace_id}", headers={"X-API-Key": track_only.key})
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    r = await api.patch(f"{WS}/{tenant.workspace_id}", json={"name": "x"}, headers={"X-API-Key": tenant.key})
    assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")


async def test_current_with_bad_keys(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    r = await api.get(f"{WS}/current", headers={"X-API-Key": "ep_live_nope"})
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    tenant = await make_tenant(pool)
    await pool.execute("UPDATE api_keys SET revoked_at = now(), is_active = false WHERE id = $1", tenant.key_id)
    r = await api.get(f"{WS}/current", headers={"X-API-Key": tenant.key})
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    archived = await make_tenant(pool)
    await pool.execute("UPDATE workspaces SET is_active = false WHERE id = $1", archived.workspace_id)
    r = await api.get(f"{WS}/current", headers={"X-API-Key": archived.key})
    assert (r.status_code, error_code(r)) == (403, "WORKSPACE_ARCHIVED")


async def test_current_with_a_session_is_my_only_workspace(api: httpx.AsyncClient) -> None:
    me = await new_account(api)
    assert (await api.get(f"{WS}/current", headers=me.headers)).status_code == 404
    ws = await new_workspace(api, me)
    assert (await api.get(f"{WS}/current", headers=me.headers)).json()["id"] == ws["id"]
    await new_workspace(api, me)
    r = await api.get(f"{WS}/current", headers=me.headers)
    assert (r.status_code, error_code(r)) == (400, "WORKSPACE_AMBIGUOUS")


@pytest.fixture
def two_workspace_limit(api_settings: Settings) -> Settings:
    return replace(api_settings, max_workspaces_per_user=2)


async def test_max_workspaces_per_user(two_workspace_limit: Settings) -> None:
    app: Starlette = create_app(two_workspace_limit)
    async with app.router.lifespan_context(app), client_for(app) as api:
        me, other = await new_account(api), await new_account(api)
        await new_workspace(api, me)
        await new_workspace(api, me)
        r = await api.post(WS, json={"name": "x", "slug": unique_slug()}, headers=me.headers)
        assert (r.status_code, error_code(r)) == (403, "WORKSPACE_LIMIT")
        # Joining counts too.
        theirs = await new_workspace(api, other)
        r = await api.post(f"{WS}/{theirs['id']}/invites", json={"email": me.email, "role": "VIEWER"},
                           headers=other.headers)  # fmt: skip
        r = await api.post(f"{WS}/invites/{r.json()['token']}/accept", headers=me.headers)
        assert (r.status_code, error_code(r)) == (403, "WORKSPACE_LIMIT")
