"""Helpers of the org tests: an org with one member of each org role, org tokens, provisioned workspaces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.api.conftest import Account, new_account

ORGS = "/api/v1/orgs"
OWS = "/api/v1/org-workspaces"
ALL_SCOPES = ["workspaces:read", "workspaces:write", "workspaces:credentials"]


@dataclass
class Org:
    id: str
    owner: Account
    admin: Account
    member: Account

    def by_role(self, role: str) -> Account:
        account: Account = getattr(self, role.lower())
        return account


async def new_org(api: httpx.AsyncClient, name: str = "Platform") -> Org:
    owner = await new_account(api)
    r = await api.post(ORGS, json={"name": name}, headers=owner.headers)
    assert r.status_code == 201, r.text
    org_id = r.json()["id"]
    people = {role: await new_account(api) for role in ("ADMIN", "MEMBER")}
    for role, account in people.items():
        r = await api.post(f"{ORGS}/{org_id}/members", json={"user_id": account.id, "role": role},
                           headers=owner.headers)  # fmt: skip
        assert r.status_code == 201, r.text
    return Org(org_id, owner, people["ADMIN"], people["MEMBER"])


async def org_token(api: httpx.AsyncClient, org: Org, scopes: list[str] | None = None) -> dict[str, str]:
    r = await api.post(f"{ORGS}/{org.id}/tokens", json={"name": "ci", "scopes": scopes or ALL_SCOPES},
                       headers=org.owner.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def provision(api: httpx.AsyncClient, org_id: str, headers: dict[str, str], name: str = "Customer") -> Any:
    r = await api.post(OWS, json={"name": name, "org_id": org_id}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()
