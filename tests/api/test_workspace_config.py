"""Settings, webhooks (with their delivery log) and public keys over the api: who may read and change
them, validation, the signing secret shown once, and the audit log."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from api.app import create_app
from eventplane import db
from eventplane.settings import Settings
from tests.api.conftest import client_for, error_code, new_account, new_team
from tests.workers.webhook_receiver import Receiver
from workers.webhooks import Deliverer

WS = "/api/v1/workspaces/{}"


def _pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


async def test_members_read_admins_change_strangers_see_nothing(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    base = WS.format(team.workspace_id)
    for role in ("VIEWER", "DEVELOPER"):
        who = team.by_role(role).headers
        for path in ("/settings", "/webhooks", "/public-keys"):
            assert (await api.get(base + path, headers=who)).status_code == 200
        r = await api.put(base + "/settings", json={"retention_days": 30}, headers=who)
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
        r = await api.put(base + "/webhooks", json={"webhooks": []}, headers=who)
        assert r.status_code == 403
    for role in ("ADMIN", "OWNER"):
        r = await api.put(base + "/settings", json={"retention_days": 30}, headers=team.by_role(role).headers)
        assert r.status_code == 200, r.text
    stranger = await new_account(api)
    for path in ("/settings", "/webhooks", "/public-keys"):
        assert (await api.get(base + path, headers=stranger.headers)).status_code == 404
    r = await api.put(base + "/settings", json={}, headers=stranger.headers)
    assert r.status_code == 404


async def test_settings_are_validated_and_audited(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    base, admin = WS.format(team.workspace_id), team.admin.headers
    r = await api.put(base + "/settings", json={"colour": "red"}, headers=admin)
    assert (r.status_code, error_code(r), r.json()["error"]["details"]) == (
        400, "VALIDATION_ERROR", {"field": "settings.colour"}
    )  # fmt: skip
    r = await api.put(base + "/settings", content=b"{not json", headers=admin)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    r = await api.put(base + "/settings", json={"identity_verification": "required"}, headers=admin)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")  # no public key yet
    doc = {"allowed_origins": ["https://app.example.com"], "identity_verification": "optional"}
    r = await api.put(base + "/settings", json=doc, headers=admin)
    assert r.json() == {"retention_days": None, **doc}
    assert (await api.get(base + "/settings", headers=team.viewer.headers)).json() == r.json()
    entry = await pool.fetchrow(
        "SELECT actor_user_id::text, after FROM audit_log "
        "WHERE workspace_id = $1 AND entity_type = 'workspace_settings'",
        uuid.UUID(team.workspace_id),
    )
    assert (
        entry is not None and entry[0] == team.admin.id and json.loads(entry[1])["identity_verification"] == "optional"
    )


async def test_public_keys_pem_and_jwk(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    base, admin = WS.format(team.workspace_id), team.admin.headers
    jwk = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())) | {"kid": "k2"}
    r = await api.put(base + "/public-keys", json={"public_keys": [_pem(), jwk]}, headers=admin)
    assert r.status_code == 200, r.text
    # Both are stored in one statement (one created_at): listed by kid, and the PEM's kid is its fingerprint.
    assert ("ES256", "k2") in [(k["alg"], k["kid"]) for k in r.json()["public_keys"]]
    assert [k["alg"] for k in r.json()["public_keys"]] == ["ES256", "ES256"]
    r = await api.put(base + "/public-keys", json={"public_keys": ["-----BEGIN PUBLIC KEY-----\nxx"]}, headers=admin)
    assert (r.status_code, r.json()["error"]["details"]) == (400, {"field": "public_keys[0]"})
    r = await api.put(base + "/public-keys", json=[_pem()], headers=admin)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    assert len((await api.get(base + "/public-keys", headers=team.viewer.headers)).json()["public_keys"]) == 2


async def test_webhook_secret_once_and_delivery_log(
    api: httpx.AsyncClient, pool: asyncpg.Pool, api_settings: Settings
) -> None:
    team = await new_team(api)
    base, admin = WS.format(team.workspace_id), team.admin.headers
    async with Receiver().serving() as receiver:
        r = await api.put(base + "/webhooks", json={"webhooks": [{"url": receiver.url}]}, headers=admin)
        assert r.status_code == 200, r.text
        (hook,) = r.json()["webhooks"]
        receiver.secret = hook["signing_secret"]
        assert receiver.secret.startswith("whsec_") and hook["status"] == "active"
        listed = (await api.get(base + "/webhooks", headers=team.viewer.headers)).json()["webhooks"]
        assert "signing_secret" not in listed[0]
        async with pool.acquire() as conn:  # two stored events (as a worker stores them)
            await db.ensure_partitions(conn)
            now = dt.datetime.now(dt.UTC)
            await conn.executemany(
                "INSERT INTO events (workspace_id, message_id, event_type, user_id, timestamp, received_at) "
                "VALUES ($1, $2, 'signup', 'u1', $3, $3)",
                [(uuid.UUID(team.workspace_id), f"m{i}", now + dt.timedelta(seconds=i)) for i in range(2)],
            )
        async with httpx.AsyncClient() as client:
            await Deliverer(pool, client, api_settings).run(budget=5)
        assert receiver.message_ids == ["m0", "m1"] and receiver.bad_signatures == 0
        r = await api.put(base + "/webhooks", json={"webhooks": [{"id": hook["id"], "url": receiver.url}]},
                          headers=admin)  # fmt: skip
        assert r.json()["webhooks"][0].get("signing_secret") is None  # kept, never shown again
        r = await api.put(base + "/webhooks", json={"webhooks": []}, headers=admin)  # no later test delivers here
    assert r.json() == {"webhooks": []}


async def test_delivery_log_and_counts_over_the_api(
    api: httpx.AsyncClient, pool: asyncpg.Pool, api_settings: Settings
) -> None:
    team = await new_team(api)
    base, admin = WS.format(team.workspace_id), team.admin.headers
    async with Receiver().serving() as receiver:
        r = await api.put(base + "/webhooks", json={"webhooks": [{"url": receiver.url}]}, headers=admin)
        hook = r.json()["webhooks"][0]
        receiver.secret, receiver.fail_next = hook["signing_secret"], 1
        async with pool.acquire() as conn:
            await db.ensure_partitions(conn)
            now = dt.datetime.now(dt.UTC)
            await conn.execute(
                "INSERT INTO events (workspace_id, message_id, event_type, user_id, timestamp, received_at) "
                "VALUES ($1, 'x1', 'signup', 'u1', $2, $2)",
                uuid.UUID(team.workspace_id),
                now,
            )
            await conn.execute(
                "UPDATE webhook_destinations SET next_attempt_at = now() WHERE id = $1", uuid.UUID(hook["id"])
            )
        async with httpx.AsyncClient() as client:
            deliverer = Deliverer(pool, client, api_settings)
            await deliverer.run(budget=5)  # answered 500: retried later
            await pool.execute(
                "UPDATE webhook_destinations SET next_attempt_at = now() WHERE id = $1", uuid.UUID(hook["id"])
            )
            await deliverer.run(budget=5)
        log = (await api.get(base + f"/webhooks/{hook['id']}/deliveries", headers=team.viewer.headers)).json()["items"]
        assert [(d["ok"], d["status_code"], d["events"]) for d in log] == [(True, 204, 1), (False, 500, 1)]
        (state,) = (await api.get(base + "/webhooks", headers=team.viewer.headers)).json()["webhooks"]
        assert (state["delivered_total"], state["failures_total"], state["pending"]) == (1, 1, 0)
        r = await api.get(base + f"/webhooks/{uuid.uuid4()}/deliveries", headers=admin)
        assert r.status_code == 404
        await api.put(base + "/webhooks", json={"webhooks": []}, headers=admin)


@pytest_asyncio.fixture(scope="module")
async def strict_api(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The api as installed by default: internal webhook destinations refused."""
    app = create_app(replace(api_settings, webhook_allow_private=False))
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield client


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9000/hook", "loopback"),
        ("http://localhost:9000/hook", "loopback"),  # a name, resolved (here by /etc/hosts)
        ("http://[::1]/hook", "loopback"),
        ("http://10.0.0.5/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://[fd12:3456::1]/hook", "unique_local"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://100.64.0.1/hook", "not_global"),
    ],
)
async def test_internal_webhook_destinations_are_refused(
    api: httpx.AsyncClient, strict_api: httpx.AsyncClient, url: str, reason: str
) -> None:
    team = await new_team(api)
    base, admin = WS.format(team.workspace_id), team.admin.headers
    good = {"url": "https://8.8.8.8/hook"}  # a public address: no DNS needed to judge it
    r = await strict_api.put(base + "/webhooks", json={"webhooks": [good, {"url": url}]}, headers=admin)
    assert (r.status_code, error_code(r)) == (400, "WEBHOOK_URL_FORBIDDEN"), r.text
    details = r.json()["error"]["details"]
    assert details["field"] == "webhooks[1].url" and details["reason"] == reason
    assert "EVENTPLANE_WEBHOOK_ALLOW_PRIVATE" in r.json()["error"]["message"]
    assert (await strict_api.get(base + "/webhooks", headers=admin)).json() == {"webhooks": []}  # nothing written
    # An update to an internal address is refused the same way.
    r = await strict_api.put(base + "/webhooks", json={"webhooks": [good]}, headers=admin)
    assert r.status_code == 200, r.text
    hook_id = r.json()["webhooks"][0]["id"]
    r = await strict_api.put(base + "/webhooks", json={"webhooks": [{"id": hook_id, "url": url}]}, headers=admin)
    assert (r.status_code, error_code(r)) == (400, "WEBHOOK_URL_FORBIDDEN")
    assert (await strict_api.get(base + "/webhooks", headers=admin)).json()["webhooks"][0]["url"] == good["url"]
    await strict_api.put(base + "/webhooks", json={"webhooks": []}, headers=admin)  # no worker delivers here
