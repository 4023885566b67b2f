"""Org workspaces: provisioned, configured and handed out with org credentials alone; access tokens from
the key + secret or from org credentials; secret rotation; archive and restore at the edge within 1 s."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api import workspace_tokens
from eventplane.settings import Settings
from tests.api.conftest import error_code
from tests.api.org_support import ORGS, OWS, new_org, org_token, provision
from tests.api.test_api_keys import TRACK, track, until_status
from tests.conftest import drain
from tests.workers.test_webhooks import _true, run_deliverer, until
from tests.workers.webhook_receiver import Receiver

OUT_FIELDS = {"id", "org_id", "name", "slug", "key", "is_active", "has_secret", "created_at", "updated_at"}


def public_pem(key: ec.EllipticCurvePrivateKey | None = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip


async def exchange(api: httpx.AsyncClient, ws: dict[str, str], secret: str) -> httpx.Response:
    return await api.post(f"{OWS}/{ws['id']}/access-token", json={"key": ws["key"], "secret": secret})


def identity(key: ec.EllipticCurvePrivateKey, user_id: str) -> str:
    """What the customer's backend signs for its SDK: the user id, for five minutes."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + 300}, key, algorithm="ES256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_saas_platform_provisions_from_its_org_token_alone(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings, api_settings: Settings
) -> None:
    org = await new_org(api)
    token = await org_token(api, org)
    customers = [await provision(api, org.id, token, f"Customer {i}") for i in range(3)]
    assert all(set(c) == OUT_FIELDS | {"secret"} and c["key"].startswith("epw_") for c in customers)
    listed = (await api.get(OWS, params={"org_id": org.id}, headers=token)).json()["items"]
    assert sorted(w["id"] for w in listed) == sorted(c["id"] for c in customers)
    assert all("secret" not in w for w in listed)

    # A key of each, made with the org token.
    keys = []
    for customer in customers:
        r = await api.post(f"{OWS}/{customer['id']}/api-keys", json={"name": "sdk", "scopes": ["track:write"]},
                           headers=token)  # fmt: skip
        assert r.status_code == 201, r.text
        keys.append(r.json()["key"])

    first = customers[0]
    signer = ec.generate_private_key(ec.SECP256R1())
    async with Receiver().serving() as receiver:
        # Configure one: a webhook to a local receiver, a public key, identity verification required.
        r = await api.patch(f"{OWS}/{first['id']}", headers=token, json={
            "name": "Customer A", "webhooks": [{"url": receiver.url, "event_types": ["signup"]}],
            "public_keys": [public_pem(signer)], "settings": {"identity_verification": "required"}})  # fmt: skip
        assert r.status_code == 200, r.text
        configured = r.json()
        assert configured["name"] == "Customer A" and configured["settings"]["identity_verification"] == "required"
        assert len(configured["public_keys"]) == 1
        receiver.secret = configured["webhooks"][0]["signing_secret"]
        again = (await api.get(f"{OWS}/{first['id']}", headers=token)).json()
        assert "signing_secret" not in again["webhooks"][0] and again["settings"] == configured["settings"]

        # Events with a key of each; the verified workspace takes only users its backend signed for.
        signed = {"X-API-Key": keys[0], "X-EventPlane-Identity": identity(signer, "u_1")}
        deadline = time.monotonic() + 5  # edges learn of the new settings within a second
        while (r := await edge.post(TRACK, json={"event_type": "signup", "user_id": "u_2", "message_id": "m-x"},
                                    headers={"X-API-Key": keys[0]})).status_code != 401:  # fmt: skip
            assert time.monotonic() < deadline, r.text
            await asyncio.sleep(0.05)
        assert r.json()["error"]["code"] == "IDENTITY_UNVERIFIED"
        r = await edge.post(TRACK, json={"event_type": "signup", "user_id": "u_1", "message_id": "m-1"}, headers=signed)
        assert r.status_code == 202, r.text
        assert [await track(edge, key) for key in keys[1:]] == [202, 202]

        # The worker stores them; the deliverer POSTs the signed batch to the receiver, which verifies it.
        await drain(settings)
        await until(lambda: _true(receiver.message_ids == ["m-1"]), 10, lambda: run_deliverer(pool, api_settings))
        assert receiver.bad_signatures == 0
        assert {b["workspace_id"] for b in receiver.batches} == {first["id"]}

    # Rotate one secret: the old secret and the tokens it minted stop at once; the new one works.
    second = customers[1]
    old_token = (await exchange(api, second, second["secret"])).json()["access_token"]
    assert (await api.get(f"/api/v1/workspaces/{second['id']}", headers=bearer(old_token))).status_code == 200
    r = await api.post(f"{OWS}/{second['id']}/rotate-secret", headers=token)
    assert (r.status_code, r.json()["previous_secret_expires_at"]) == (200, None)
    new_secret = r.json()["secret"]
    r = await exchange(api, second, second["secret"])
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    r = await api.get(f"/api/v1/workspaces/{second['id']}", headers=bearer(old_token))
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    assert (await exchange(api, second, new_secret)).status_code == 200

    # Archive one: its key gets 403 at the edge within a second, its tokens 403 on the api; restore it.
    third = customers[2]
    third_token = (await exchange(api, third, third["secret"])).json()["access_token"]
    r = await api.post(f"{OWS}/{third['id']}/archive", headers=token)
    assert (r.status_code, r.json()["is_active"]) == (200, False)
    assert await until_status(edge, keys[2], 403) < 1.0
    r = await api.get(f"/api/v1/workspaces/{third['id']}", headers=bearer(third_token))
    assert (r.status_code, error_code(r)) == (403, "WORKSPACE_ARCHIVED")
    r = await exchange(api, third, third["secret"])
    assert (r.status_code, error_code(r)) == (403, "WORKSPACE_ARCHIVED")
    assert (await api.post(f"{OWS}/{third['id']}/restore", headers=token)).json()["is_active"] is True
    assert await until_status(edge, keys[2], 202) < 1.0

    actions = await pool.fetch("SELECT action, entity_type FROM audit_log WHERE org_id = $1 AND workspace_id IS "
                               "NOT NULL", uuid.UUID(org.id))  # fmt: skip
    assert {(a["action"], a["entity_type"]) for a in actions} >= {
        ("create", "workspace"), ("update", "workspace"), ("create", "api_key"), ("rotate_secret", "workspace"),
        ("archive", "workspace"), ("restore", "workspace"),
    }  # fmt: skip


async def test_an_access_token_acts_as_its_workspace_only(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    a, b = await provision(api, org.id, org.owner.headers), await provision(api, org.id, org.owner.headers)
    r = await exchange(api, a, a["secret"])
    assert r.status_code == 200
    issued = r.json()
    assert (issued["expires_in"], issued["scopes"]) == (workspace_tokens.TTL, list(workspace_tokens.SCOPES))
    auth = bearer(issued["access_token"])
    assert (await api.get("/api/v1/workspaces/current", headers=auth)).json()["id"] == a["id"]
    assert (await api.get(f"/api/v1/workspaces/{a['id']}/feature-flags", headers=auth)).status_code == 200
    assert (await api.get(f"/api/v1/workspaces/{b['id']}", headers=auth)).status_code == 404
    r = await api.get(f"/api/v1/workspaces/{a['id']}/members", headers=auth)  # people's business: sessions only
    assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")
    r = await api.get(f"{ORGS}/{org.id}", headers=auth)
    assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")
    # A wrong secret, another workspace's key, a tampered token: refused.
    assert (await exchange(api, a, b["secret"])).status_code == 401
    assert (await exchange(api, {"id": a["id"], "key": b["key"]}, a["secret"])).status_code == 401
    r = await api.get(f"/api/v1/workspaces/{a['id']}", headers=bearer(issued["access_token"][:-2] + "xx"))
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    # Org credentials mint one too (workspaces:credentials).
    r = await api.post(f"{OWS}/{b['id']}/access-token", headers=await org_token(api, org, ["workspaces:credentials"]))
    assert r.status_code == 200
    assert (await api.get(f"/api/v1/workspaces/{b['id']}", headers=bearer(r.json()["access_token"]))).status_code == 200
    r = await api.post(f"{OWS}/{b['id']}/access-token", headers=org.member.headers)
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")


async def test_rotation_with_grace_keeps_the_old_secret_until_it_ends(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    org = await new_org(api)
    ws = await provision(api, org.id, org.admin.headers)
    old_token = (await exchange(api, ws, ws["secret"])).json()["access_token"]
    r = await api.post(f"{OWS}/{ws['id']}/rotate-secret", json={"grace_seconds": 3600}, headers=org.admin.headers)
    assert r.status_code == 200 and r.json()["previous_secret_expires_at"] is not None
    assert (await exchange(api, ws, ws["secret"])).status_code == 200
    assert (await api.get(f"/api/v1/workspaces/{ws['id']}", headers=bearer(old_token))).status_code == 200
    # The grace ends (moved to the past rather than waited for): the old secret and its tokens stop.
    await pool.execute("UPDATE workspaces SET previous_secret_until = now() - interval '1 second' WHERE id = $1",
                       uuid.UUID(ws["id"]))  # fmt: skip
    assert (await exchange(api, ws, ws["secret"])).status_code == 401
    assert (await api.get(f"/api/v1/workspaces/{ws['id']}", headers=bearer(old_token))).status_code == 401
    assert (await exchange(api, ws, r.json()["secret"])).status_code == 200


async def test_the_secret_is_stored_hashed(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    org = await new_org(api)
    ws = await provision(api, org.id, org.owner.headers)
    stored = await pool.fetchval("SELECT secret_hash FROM workspaces WHERE id = $1", uuid.UUID(ws["id"]))
    assert ws["secret"] not in str(stored) and len(stored) == 64


async def test_the_plan_caps_workspaces_per_org(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    for _ in range(5):
        await provision(api, org.id, org.owner.headers)
    r = await api.post(OWS, json={"name": "sixth", "org_id": org.id}, headers=org.owner.headers)
    assert (r.status_code, error_code(r), r.json()["error"]["details"]) == (
        403, "PLAN_LIMIT", {"limit": "max_workspaces", "max": 5})  # fmt: skip


async def test_bad_configuration_is_refused_whole(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    ws = await provision(api, org.id, org.owner.headers)
    for patch, field in (({"settings": {"colour": "red"}}, "settings.colour"),
                         ({"webhooks": [{"url": "ftp://x"}]}, "webhooks[0].url"),
                         ({"public_keys": ["not a key"]}, "public_keys[0]"),
                         ({"name": "", "settings": {}}, "name")):  # fmt: skip
        r = await api.patch(f"{OWS}/{ws['id']}", json=patch, headers=org.owner.headers)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), patch
        assert r.json()["error"]["details"]["field"] == field, r.json()
    r = await api.patch(f"{OWS}/{ws['id']}", json={"name": "New", "webhooks": [{"url": "nope"}]},
                        headers=org.owner.headers)  # fmt: skip
    assert r.status_code == 400
    assert (await api.get(f"{OWS}/{ws['id']}", headers=org.owner.headers)).json()["name"] == ws["name"]


async def test_every_org_role_on_org_workspaces(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    ws = await provision(api, org.id, org.admin.headers)
    member = org.member.headers
    assert (await api.get(f"{OWS}/{ws['id']}", headers=member)).status_code == 200
    for r in (
        await api.post(OWS, json={"name": "x", "org_id": org.id}, headers=member),
        await api.patch(f"{OWS}/{ws['id']}", json={"name": "x"}, headers=member),
        await api.post(f"{OWS}/{ws['id']}/rotate-secret", headers=member),
        await api.post(f"{OWS}/{ws['id']}/archive", headers=member),
    ):
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")


async def test_flag_and_experiment_caps_count_across_the_org(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    token = await org_token(api, org)
    first, second = await provision(api, org.id, token), await provision(api, org.id, token)
    experiment = {"variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}],
                  "conversion": {"event_type": "purchase"}}  # fmt: skip

    async def make(kind: str, ws: dict[str, str], keys: range) -> list[int]:
        extra = experiment if kind == "experiments" else {}
        path = f"/api/v1/workspaces/{ws['id']}/{kind}"
        return [(await api.post(path, json={"key": f"k{i}", **extra}, headers=org.owner.headers)).status_code
                for i in keys]  # fmt: skip

    # free: 50 flags and 10 draft or running experiments in the whole org, whichever workspace holds them
    assert await make("feature-flags", first, range(25)) + await make("feature-flags", second, range(25)) == [201] * 50
    r = await api.post(f"/api/v1/workspaces/{first['id']}/feature-flags", json={"key": "one-more"},
                       headers=org.owner.headers)  # fmt: skip
    assert (r.status_code, r.json()["error"]["details"]) == (403, {"limit": "max_feature_flags", "max": 50}), r.text
    assert await make("experiments", first, range(5)) + await make("experiments", second, range(5)) == [201] * 10
    r = await api.post(f"/api/v1/workspaces/{second['id']}/experiments", json={"key": "x", **experiment},
                       headers=org.owner.headers)  # fmt: skip
    assert (r.status_code, r.json()["error"]["details"]) == (403, {"limit": "max_experiments", "max": 10}), r.text


async def test_plan_limits_count_across_the_org(api: httpx.AsyncClient) -> None:
    org = await new_org(api)
    token = await org_token(api, org)
    first, second = await provision(api, org.id, token), await provision(api, org.id, token)
    made = [await api.post(f"{OWS}/{ws['id']}/api-keys", json={"name": "k", "scopes": ["write"]}, headers=token)
            for ws in (first, first, second)]  # fmt: skip
    assert [r.status_code for r in made] == [201, 201, 201]  # free: 3 active keys in the org
    r = await api.post(f"{OWS}/{second['id']}/api-keys", json={"name": "k", "scopes": ["write"]}, headers=token)
    assert (r.status_code, error_code(r), r.json()["error"]["details"]) == (
        403, "PLAN_LIMIT", {"limit": "max_api_keys", "max": 3})  # fmt: skip
