"""Org invitations: the workspace invitation machinery with an org as its target."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from api import sessions
from tests.api.conftest import error_code, new_account
from tests.api.org_support import ORGS, new_org


async def test_invite_accept_once_and_become_a_member(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    org = await new_org(api)
    guest = await new_account(api)
    r = await api.post(f"{ORGS}/{org.id}/invites", json={"email": guest.email.upper(), "role": "ADMIN"},
                       headers=org.admin.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    invite = r.json()
    stored = await pool.fetchval("SELECT token_hash FROM invitations WHERE id = $1", uuid.UUID(invite["id"]))
    assert stored == sessions.token_hash(invite["token"])
    listed = (await api.get(f"{ORGS}/{org.id}/invites", headers=org.member.headers)).json()["items"]
    assert [i["id"] for i in listed] == [invite["id"]] and "token" not in listed[0]

    r = await api.post(f"/api/v1/orgs/invites/{invite['token']}/accept", headers=org.member.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")  # another email
    r = await api.post(f"/api/v1/orgs/invites/{invite['token']}/accept", headers=guest.headers)
    assert (r.status_code, r.json()["role"], r.json()["user_id"]) == (200, "ADMIN", guest.id)
    r = await api.post(f"/api/v1/orgs/invites/{invite['token']}/accept", headers=guest.headers)
    assert r.status_code == 404  # single use
    assert (await api.get(f"{ORGS}/{org.id}", headers=guest.headers)).status_code == 200
    # An org token is no workspace invitation, nor the reverse.
    r = await api.post(f"/api/v1/workspaces/invites/{invite['token']}/accept", headers=guest.headers)
    assert r.status_code == 404


async def test_nobody_invites_above_their_role(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    r = await api.post(f"{ORGS}/{org.id}/invites", json={"email": "x@example.test", "role": "OWNER"},
                       headers=org.admin.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.post(f"{ORGS}/{org.id}/invites", json={"email": "x@example.test"}, headers=org.member.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.post(f"{ORGS}/{org.id}/invites", json={"email": org.member.email}, headers=org.owner.headers)
    assert (r.status_code, error_code(r)) == (409, "CONFLICT")


async def test_cancel_and_expiry(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    org = await new_org(api)
    guest = await new_account(api)
    first = (await api.post(f"{ORGS}/{org.id}/invites", json={"email": guest.email}, headers=org.owner.headers)).json()
    r = await api.delete(f"{ORGS}/{org.id}/invites/{first['id']}", headers=org.owner.headers)
    assert r.status_code == 204
    assert (await api.post(f"/api/v1/orgs/invites/{first['token']}/accept", headers=guest.headers)).status_code == 404
    second = (await api.post(f"{ORGS}/{org.id}/invites", json={"email": guest.email}, headers=org.owner.headers)).json()
    await pool.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
                       uuid.UUID(second["id"]))  # fmt: skip
    r = await api.post(f"/api/v1/orgs/invites/{second['token']}/accept", headers=guest.headers)
    assert (r.status_code, error_code(r)) == (410, "INVITATION_EXPIRED")
