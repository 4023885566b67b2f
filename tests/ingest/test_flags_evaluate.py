"""POST /api/v1/feature-flags/{key}/evaluate on the real edge, with definitions committed the api's way."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
from redis.asyncio import Redis

from eventplane import tenants
from eventplane.redis_names import RedisNames
from tests.conftest import Tenant, make_tenant
from tests.ingest import flagseed


def evaluate_path(key: str) -> str:
    return f"/api/v1/feature-flags/{key}/evaluate"


async def test_evaluate_answers_from_the_definition(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[
        flagseed.flag("on-for-all"),
        flagseed.flag("off", enabled=False),
        flagseed.flag("pro-only", rollout=0, rules=[
            {"id": "r1", "match": "all", "conditions": [{"attribute": "plan", "operator": "eq", "value": "pro"}],
             "rollout": 100},
        ]),
    ])  # fmt: skip
    r = await edge.post(evaluate_path("on-for-all"), json={"user_id": "u1"}, headers=tenant.headers)
    assert (r.status_code, r.json()) == (200, {"key": "on-for-all", "enabled": True, "value": True, "reason": "SPLIT"})
    r = await edge.post(evaluate_path("off"), json={"user_id": "u1"}, headers=tenant.headers)
    assert r.json() == {"key": "off", "enabled": False, "value": False, "reason": "DISABLED"}
    pro = {"user_id": "u1", "attributes": {"plan": "pro"}}
    r = await edge.post(evaluate_path("pro-only"), json=pro, headers=tenant.headers)
    assert r.json() == {"key": "pro-only", "enabled": True, "value": True, "reason": "TARGETING_MATCH"}
    r = await edge.post(evaluate_path("pro-only"), json={"user_id": "u1"}, headers=tenant.headers)
    assert r.json() == {"key": "pro-only", "enabled": False, "value": False, "reason": "DEFAULT"}


async def test_unknown_flag_is_404_flag_not_found(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await edge.post(evaluate_path("nope"), json={"user_id": "u1"}, headers=tenant.headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "FLAG_NOT_FOUND"
    assert "nope" in r.json()["error"]["message"]


async def test_malformed_bodies_are_400_never_500(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    path = evaluate_path("any")
    cases = [
        (b"{", "INVALID_JSON"),
        (b'{"user_id": 5}', "VALIDATION_ERROR"),
        (b'{"attributes": []}', "VALIDATION_ERROR"),
        (b'{"user_id": "%s"}' % (b"x" * 256), "VALIDATION_ERROR"),
        (b"[1]", "VALIDATION_ERROR"),
    ]
    for body, code in cases:
        r = await edge.post(path, content=body, headers=tenant.headers)
        assert (r.status_code, r.json()["error"]["code"]) == (400, code), body
    r = await edge.post(path, content=b'{"user_id": 5}', headers=tenant.headers)
    assert r.json()["error"]["details"] == {"field": "user_id"}


async def test_scopes_a_write_only_key_is_403_and_no_key_is_401(edge: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    writer = await make_tenant(pool, ["track:write"])
    reader = await make_tenant(pool, ["experiments:read"])
    for who in (writer, reader):
        r = await edge.post(evaluate_path("f"), json={}, headers=who.headers)
        assert r.status_code == 403
        assert r.json()["error"] == {
            "code": "INSUFFICIENT_SCOPE",
            "message": "API key lacks the scope 'flags:read' (or a bundle containing it: read, write, admin)",
            "details": {"required_scope": "flags:read"},
        }
    r = await edge.post(evaluate_path("f"), json={})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "AUTH_ERROR")
    r = await edge.get(evaluate_path("f"), headers=writer.headers)
    assert (r.status_code, r.headers["allow"]) == (405, "POST")


async def test_the_flag_routes_refuse_a_suspended_plan_like_the_tracking_routes(
    edge: httpx.AsyncClient, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    """One authenticator: the flag routes answer PLAN_SUSPENDED as tracking does (they had their own copy)."""
    t = await make_tenant(pool, ["read"])
    assert (await edge.post(evaluate_path("f"), json={}, headers=t.headers)).status_code == 404  # usable key
    await tenants.set_plan(pool, redis, keys, t.slug, "suspended")
    deadline = time.monotonic() + 2
    while (r := await edge.post(evaluate_path("f"), json={}, headers=t.headers)).status_code != 403:
        assert time.monotonic() < deadline, f"still {r.status_code}"
        await asyncio.sleep(0.02)
    assert r.json()["error"]["code"] == "PLAN_SUSPENDED"
    r = await edge.get("/api/v1/sdk/config", headers=t.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "PLAN_SUSPENDED")


async def test_a_change_is_answered_within_one_second(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    definition = flagseed.flag("switch")
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[definition])
    r = await edge.post(evaluate_path("switch"), json={"user_id": "u"}, headers=tenant.headers)
    assert r.json()["enabled"] is True  # now cached at the edge (memory and Redis)
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[{**definition, "enabled": False}])
    changed = time.monotonic()
    while True:
        r = await edge.post(evaluate_path("switch"), json={"user_id": "u"}, headers=tenant.headers)
        if r.json()["enabled"] is False:
            break
        assert time.monotonic() - changed < 1.0, "the edge still answers the old definition after 1 s"
        await asyncio.sleep(0.02)
