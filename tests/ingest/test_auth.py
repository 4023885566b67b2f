"""Key checks at the edge: scopes, archived workspaces, and revocation reaching every edge within 1 s."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis

from eventplane import apikeys, tenants
from eventplane.keyformat import generate, hash_key
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import make_tenant, running_edge

TRACK = "/api/v1/tracking/track"
OK = {"event_type": "e", "user_id": "u"}


async def test_missing_scope_is_403_naming_it(edge: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    reader = await make_tenant(pool, scopes=["read"])
    r = await edge.post(TRACK, json=OK, headers=reader.headers)
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "INSUFFICIENT_SCOPE"
    assert error["details"] == {"required_scope": "track:write"}
    assert "track:write" in error["message"]


async def test_exact_scope_and_admin_bundle_are_enough(edge: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    for scope in ("track:write", "admin"):
        t = await make_tenant(pool, scopes=[scope])
        assert (await edge.post(TRACK, json=OK, headers=t.headers)).status_code == 202


async def test_archived_workspace_is_403_until_restored(
    edge: httpx.AsyncClient, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    t = await make_tenant(pool)
    assert (await edge.post(TRACK, json=OK, headers=t.headers)).status_code == 202
    await pool.execute("UPDATE workspaces SET is_active = false WHERE id = $1", t.workspace_id)
    await apikeys.refresh(pool, redis, keys, [hash_key(t.key)])
    r = await _poll_until(edge, t.headers, lambda s: s != 202)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "WORKSPACE_ARCHIVED")
    await pool.execute("UPDATE workspaces SET is_active = true WHERE id = $1", t.workspace_id)
    await apikeys.refresh(pool, redis, keys, [hash_key(t.key)])
    assert (await _poll_until(edge, t.headers, lambda s: s == 202)).status_code == 202


async def test_expired_key_is_401(edge: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    t = await make_tenant(pool)
    await pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", t.key_id)
    assert (await edge.post(TRACK, json=OK, headers=t.headers)).status_code == 401


async def _poll_until(
    edge: httpx.AsyncClient, headers: dict[str, str], done: object, limit: float = 2.0
) -> httpx.Response:
    deadline = time.monotonic() + limit
    while True:
        r = await edge.post(TRACK, json=OK, headers=headers)
        if done(r.status_code) or time.monotonic() > deadline:  # type: ignore[operator]
            return r
        await asyncio.sleep(0.02)


async def test_revoked_key_gets_401_at_every_edge_within_a_second(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    t = await make_tenant(pool)
    async with running_edge(settings) as one, running_edge(settings) as two:
        for edge in (one, two):  # both edges now hold the key in their local caches
            assert (await edge.post(TRACK, json=OK, headers=t.headers)).status_code == 202
            assert (await edge.post(TRACK, json=OK, headers=t.headers)).status_code == 202
        revoked_at = time.monotonic()
        assert await tenants.revoke_api_key(pool, redis, keys, t.key_id)
        for edge in (one, two):
            r = await _poll_until(edge, t.headers, lambda s: s == 401)
            elapsed = time.monotonic() - revoked_at
            assert r.status_code == 401, f"still {r.status_code} after {elapsed:.2f}s"
            assert elapsed < 1.0, f"took {elapsed:.2f}s"


def _forged_entries(workspace_id: str) -> list[bytes]:
    """What someone who can write to Redis, but lacks the cache secret, could put in a key's slot:
    a plain entry, and one with a MAC under a guessed secret."""
    grant = [True, str(uuid.uuid4()), workspace_id, ["track:write"], True, None, True, "free"]
    plain = orjson.dumps(grant)
    payload = orjson.dumps([int(time.time()) + 3600, grant])
    return [plain, orjson.dumps(grant[:7]), hmac.new(b"guess", payload, hashlib.sha256).digest() + payload]


async def test_a_forged_cache_entry_for_an_unknown_key_is_401(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    victim = await make_tenant(pool)
    for forged in _forged_entries(victim.workspace_id):
        key = generate()  # well formed, in no database
        await redis.set(keys.api_key(hash_key(key)), forged, ex=60)
        async with running_edge(settings) as edge:  # a fresh edge: nothing in its local cache
            r = await edge.post(TRACK, json=OK, headers={"X-API-Key": key})
            metrics = (await edge.get("/metrics")).text
        assert (r.status_code, r.json()["error"]["code"]) == (401, "AUTH_ERROR"), forged
        assert "eventplane_ingest_key_cache_refused_entries_total 1.0" in metrics


async def test_a_tampered_or_copied_cache_entry_for_a_revoked_key_is_401(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    revoked, active = await make_tenant(pool), await make_tenant(pool)
    async with running_edge(settings) as edge:  # fills the shared cache with the active key's entry
        assert (await edge.post(TRACK, json=OK, headers=active.headers)).status_code == 202
    assert await tenants.revoke_api_key(pool, redis, keys, revoked.key_id)
    slot = keys.api_key(hash_key(revoked.key))
    entry = await redis.get(slot)
    assert entry is not None and b"false" in entry
    copied = await redis.get(keys.api_key(hash_key(active.key)))
    assert copied is not None
    for tampered in (entry.replace(b"false", b"true", 1), copied):
        await redis.set(slot, tampered, ex=60)
        async with running_edge(settings) as fresh:
            r = await fresh.post(TRACK, json=OK, headers=revoked.headers)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "AUTH_ERROR")
