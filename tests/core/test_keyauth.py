"""The one key authenticator, seen from both of its users: a suspended plan's keys are refused at every
edge within a second and on the api, and a plan change through the api reaches the edges."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import httpx
from redis.asyncio import Redis

from api.app import create_app as create_api
from eventplane import apikeys, keyauth
from eventplane.keyformat import hash_key
from eventplane.redis_names import RedisNames
from eventplane.settings import Secret, Settings
from tests.api.conftest import new_account, new_workspace
from tests.conftest import make_tenant, running_edge

TRACK = "/api/v1/tracking/track"
OK = {"event_type": "e", "user_id": "u"}


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    cheap = replace(settings, jwt_secret=Secret(secrets.token_urlsafe(48)), password_time_cost=1,
                    password_memory_kib=8 * 1024)  # fmt: skip
    app = create_api(cheap)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(f"10.9.{secrets.randbelow(256)}.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


async def _poll(edge: httpx.AsyncClient, headers: dict[str, str], status: int, limit: float = 2.0) -> httpx.Response:
    deadline = time.monotonic() + limit
    while True:
        r = await edge.post(TRACK, json=OK, headers=headers)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.02)


async def test_suspended_plan_is_403_at_every_edge_within_a_second_and_on_the_api(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    t = await make_tenant(pool)
    async with running_edge(settings) as one, running_edge(settings) as two:
        for edge in (one, two):  # both edges now hold the key in their local caches
            assert (await edge.post(TRACK, json=OK, headers=t.headers)).status_code == 202
            assert (await edge.post(TRACK, json=OK, headers=t.headers)).status_code == 202
        await pool.execute("UPDATE workspaces SET plan = 'suspended' WHERE id = $1", t.workspace_id)
        changed = time.monotonic()
        await apikeys.invalidate_workspace(pool, redis, keys, t.workspace_id)
        for edge in (one, two):
            r = await _poll(edge, t.headers, 403)
            elapsed = time.monotonic() - changed
            assert r.status_code == 403, f"still {r.status_code} after {elapsed:.2f}s"
            assert elapsed < 1.0, f"took {elapsed:.2f}s"
            error = r.json()["error"]
            assert (error["code"], error["details"]) == ("PLAN_SUSPENDED", {"plan": "suspended"})
            assert "operator" in error["message"]
    async with api_client(settings) as api:
        r = await api.get("/api/v1/workspaces/current", headers={"X-API-Key": t.key})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "PLAN_SUSPENDED")


async def test_a_plan_change_through_the_api_reaches_the_edges(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    async with api_client(settings) as api:
        owner = await new_account(api)
        workspace = await new_workspace(api, owner)
        r = await api.post(f"/api/v1/workspaces/{workspace['id']}/api-keys", headers=owner.headers,
                           json={"name": "k", "scopes": ["write"]})  # fmt: skip
        key_hash = hash_key(r.json()["key"])
        pubsub = redis.pubsub()
        await pubsub.subscribe(keys.key_channel)
        try:
            # The operator had moved it to pro; its owner goes back to the default plan (no admin token needed).
            await pool.execute("UPDATE workspaces SET plan = 'pro' WHERE id = $1", workspace["id"])
            r = await api.patch(f"/api/v1/workspaces/{workspace['id']}", json={"plan": "free"}, headers=owner.headers)
            assert r.status_code == 200, r.text
            published = await _next_message(pubsub)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        assert published == key_hash.encode()
        entry = await redis.get(keys.api_key(key_hash))
        info = apikeys.unseal(keys, key_hash, entry)
        assert info is not None and info.plan == "free"


async def _next_message(pubsub: object, limit: float = 2.0) -> bytes | None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)  # type: ignore[attr-defined]
        if message is not None:
            data: bytes = message["data"]
            return data
    return None


def test_extraction_rules() -> None:
    key = "ep_live_" + "a" * 38
    basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    assert keyauth.extract(f" {key} ", None) == key
    assert keyauth.extract(None, f"Bearer {key}") == key
    assert keyauth.extract(None, basic) == key
    assert keyauth.extract(None, "Basic !!!") == ""
    assert keyauth.extract(None, "Token abc") == ""
    assert keyauth.extract(None, None) is None
