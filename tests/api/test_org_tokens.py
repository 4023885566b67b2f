"""Org tokens: shown once and stored hashed, scoped, revocable, with last_used_at, and refused everywhere
outside the org endpoints."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg
import httpx

from tests.api.conftest import error_code
from tests.api.org_support import ORGS, OWS, new_org, org_token, provision


async def test_shown_once_stored_hashed_last_used_and_revoked(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    org = await new_org(api)
    r = await api.post(f"{ORGS}/{org.id}/tokens", json={"name": "ci", "scopes": ["workspaces:read"]},
                       headers=org.owner.headers)  # fmt: skip
    assert r.status_code == 201
    created = r.json()
    token = created["token"]
    assert token.startswith("epo_") and created["scopes"] == ["workspaces:read"] and created["last_used_at"] is None
    row = await pool.fetchrow("SELECT token_hash FROM org_tokens WHERE id = $1", uuid.UUID(created["id"]))
    assert row is not None and row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    [listed] = (await api.get(f"{ORGS}/{org.id}/tokens", headers=org.admin.headers)).json()["items"]
    assert "token" not in listed and listed["id"] == created["id"]

    auth = {"Authorization": f"Bearer {token}"}
    assert (await api.get(f"{ORGS}/{org.id}", headers=auth)).status_code == 200
    [listed] = (await api.get(f"{ORGS}/{org.id}/tokens", headers=org.admin.headers)).json()["items"]
    assert listed["last_used_at"] is not None

    r = await api.delete(f"{ORGS}/{org.id}/tokens/{created['id']}", headers=org.admin.headers)
    assert r.status_code == 204
    r = await api.get(f"{ORGS}/{org.id}", headers=auth)
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")


async def test_refused_outside_the_org_endpoints(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    auth = await org_token(api, org)
    ws = await provision(api, org.id, auth)
    for path in (f"/api/v1/workspaces/{ws['id']}", "/api/v1/me", "/api/v1/workspaces",
                 f"/api/v1/workspaces/{ws['id']}/members", f"/api/v1/workspaces/{ws['id']}/feature-flags"):  # fmt: skip
        r = await api.get(path, headers=auth)
        assert (r.status_code, error_code(r)) == (403, "ORG_TOKEN_NOT_ALLOWED"), path


async def test_scopes(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    read = await org_token(api, org, ["workspaces:read"])
    write = await org_token(api, org, ["workspaces:write"])
    ws = await provision(api, org.id, write)
    assert (await api.get(f"{OWS}/{ws['id']}", headers=read)).status_code == 200
    for denied in (
        await api.post(OWS, json={"name": "x", "org_id": org.id}, headers=read),
        await api.post(f"{OWS}/{ws['id']}/archive", headers=read),
        await api.post(f"{OWS}/{ws['id']}/access-token", headers=write),
        await api.post(f"{OWS}/{ws['id']}/rotate-secret", headers=write),
        await api.post(f"{ORGS}/{org.id}/tokens", json={"name": "t", "scopes": ["workspaces:read"]}, headers=read),
        await api.patch(f"{ORGS}/{org.id}", json={"name": "x"}, headers=write),
    ):
        assert (denied.status_code, error_code(denied)) == (403, "INSUFFICIENT_SCOPE")
    r = await api.post(f"{ORGS}/{org.id}/tokens", json={"name": "t", "scopes": ["admin"]}, headers=org.owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    r = await api.post(f"{ORGS}/{org.id}/tokens", json={"name": "t", "scopes": ["workspaces:read"]},
                       headers=org.member.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
