"""POST /api/v1/experiments/{key}/assign: sticky assignments (Redis, first wins) and exposures (queued as
`$exposure` events, stored once per unit), on the real edge, queue and worker."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import asyncpg
import httpx
from redis.asyncio import Redis

from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain, make_tenant, running_edge
from tests.ingest import flagseed

UNITS = [f"user-{i}" for i in range(200)]


def assign_path(key: str) -> str:
    return f"/api/v1/experiments/{key}/assign"


async def assign_all(edge: httpx.AsyncClient, tenant: Tenant, key: str, units: list[str]) -> dict[str, dict[str, str]]:
    """Each unit's answer (20 requests in flight at a time)."""
    gate = asyncio.Semaphore(20)

    async def one(unit: str) -> dict[str, str]:
        async with gate:
            r = await edge.post(assign_path(key), json={"user_id": unit}, headers=tenant.headers)
        assert r.status_code == 200, r.text
        answer: dict[str, str] = r.json()
        return answer

    return dict(zip(units, await asyncio.gather(*(one(u) for u in units)), strict=True))


async def seen(edge: httpx.AsyncClient, tenant: Tenant, version: int) -> None:
    """Wait (at most 1 s) until the edge serves config `version`."""
    deadline = time.monotonic() + 1.0
    while (await edge.get("/api/v1/sdk/config", headers=tenant.headers)).json()["version"] < version:
        assert time.monotonic() < deadline, f"the edge did not see version {version} within 1 s"
        await asyncio.sleep(0.01)


async def test_first_answer_is_split_then_sticky(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[flagseed.experiment("checkout")])
    first = await assign_all(edge, tenant, "checkout", ["u1"])
    assert first["u1"]["reason"] == "SPLIT"
    assert first["u1"]["key"] == "checkout"
    assert first["u1"]["variant"] in ("control", "treatment")
    again = await assign_all(edge, tenant, "checkout", ["u1"])
    assert again["u1"] == {**first["u1"], "reason": "STICKY"}


async def test_weight_change_keeps_exposed_units_and_rerandomize_moves_them(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    definition = flagseed.experiment("pricing")
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[definition])
    before = await assign_all(edge, tenant, "pricing", UNITS)
    assert {a["variant"] for a in before.values()} == {"control", "treatment"}

    skewed = {**definition, "variants": [{"key": "control", "weight": 1}, {"key": "treatment", "weight": 99}]}
    await seen(edge, tenant, await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[skewed]))
    after = await assign_all(edge, tenant, "pricing", UNITS)
    assert {u: a["variant"] for u, a in after.items()} == {u: a["variant"] for u, a in before.items()}
    assert {a["reason"] for a in after.values()} == {"STICKY"}
    # A unit never exposed gets the new weights.
    fresh = await assign_all(edge, tenant, "pricing", ["never-seen-before"])
    assert fresh["never-seen-before"]["reason"] == "SPLIT"

    rerandomized = {**skewed, "salt": "0123456789ab", "bucket_version": 2}
    await seen(edge, tenant, await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[rerandomized]))
    moved = await assign_all(edge, tenant, "pricing", UNITS)
    assert {a["reason"] for a in moved.values()} == {"SPLIT"}
    changed = [u for u in UNITS if moved[u]["variant"] != before[u]["variant"]]
    assert len(changed) > 50  # about half were control; at 1/99 nearly all of them are treatment now


async def test_a_variant_recorded_by_another_edge_wins(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    definition = flagseed.experiment("banner", variants=[{"key": "a", "weight": 100}, {"key": "b", "weight": 0}])
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[definition])
    sticky = keys.sticky(tenant.workspace_id, "banner", definition["salt"], 1)
    await redis.hset(sticky, "u-other-edge", "b")  # type: ignore[misc]
    got = await assign_all(edge, tenant, "banner", ["u-other-edge", "u-new"])
    assert got["u-other-edge"] == {"key": "banner", "variant": "b", "reason": "STICKY"}
    assert got["u-new"] == {"key": "banner", "variant": "a", "reason": "SPLIT"}
    assert await redis.hget(sticky, "u-new") == b"a"  # type: ignore[misc]


async def test_a_recorded_variant_the_experiment_no_longer_lists_is_replaced(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    definition = flagseed.experiment("layout", variants=[{"key": "a", "weight": 100}, {"key": "b", "weight": 0}])
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[definition])
    sticky = keys.sticky(tenant.workspace_id, "layout", definition["salt"], 1)
    await redis.hset(sticky, "u1", "removed-variant")  # type: ignore[misc]
    got = await assign_all(edge, tenant, "layout", ["u1"])
    assert got["u1"] == {"key": "layout", "variant": "a", "reason": "SPLIT"}
    assert await redis.hget(sticky, "u1") == b"a"  # type: ignore[misc]
    assert (await assign_all(edge, tenant, "layout", ["u1"]))["u1"]["reason"] == "STICKY"


async def test_no_variant_answers(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[
        flagseed.experiment("draft", status="draft"),
        flagseed.experiment("closed", allocation=0),
        flagseed.experiment("pros", targeting={"match": "all", "conditions": [
            {"attribute": "plan", "operator": "eq", "value": "pro"}]}),
    ])  # fmt: skip
    for key, reason in (("draft", "NOT_RUNNING"), ("closed", "NOT_ALLOCATED"), ("pros", "TARGETING_MISS")):
        r = await edge.post(assign_path(key), json={"user_id": "u1"}, headers=tenant.headers)
        assert (r.status_code, r.json()) == (200, {"key": key, "variant": None, "reason": reason})
    r = await edge.post(assign_path("pros"), json={}, headers=tenant.headers)
    assert r.json() == {"key": "pros", "variant": None, "reason": "ERROR", "error_code": "TARGETING_KEY_MISSING"}
    r = await edge.post(assign_path("missing"), json={"user_id": "u1"}, headers=tenant.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "EXPERIMENT_NOT_FOUND")


async def test_assign_needs_experiments_read(edge: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    for scopes in (["track:write"], ["flags:read"]):
        who = await make_tenant(pool, scopes)
        r = await edge.post(assign_path("x"), json={"user_id": "u"}, headers=who.headers)
        assert r.status_code == 403
        assert r.json()["error"]["details"] == {"required_scope": "experiments:read"}


async def test_exposures_are_queued_once_per_unit_and_stored_once(
    fresh: Settings, pool: asyncpg.Pool, redis: Redis
) -> None:
    keys = RedisNames(fresh.redis_prefix)
    tenant = await make_tenant(pool, ["read"])
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[
        flagseed.experiment("onboarding"), flagseed.experiment("idle", status="stopped"),
    ])  # fmt: skip
    async with running_edge(fresh) as edge:
        for _ in range(3):
            await assign_all(edge, tenant, "onboarding", ["u1", "u2"])
        r = await edge.post(assign_path("onboarding"), json={"anonymous_id": "anon-1"}, headers=tenant.headers)
        anon_variant = r.json()["variant"]
        await assign_all(edge, tenant, "idle", ["u1"])
        # 9 answers with a variant, 3 units: this edge queued 3 events.
        assert int(await redis.get(keys.queued_events) or 0) == 3
    # Another edge process (its own memory) exposes u1 again: the ledger stores it once all the same.
    async with running_edge(replace(fresh, exposure_window=0.0)) as other:
        await assign_all(other, tenant, "onboarding", ["u1"])
    await drain(fresh)
    rows = await pool.fetch(
        "SELECT message_id, user_id, anonymous_id, properties FROM events "
        "WHERE workspace_id = $1 AND event_type = '$exposure' ORDER BY message_id",
        tenant.workspace_id,
    )
    assert [r["message_id"] for r in rows] == ["exp:onboarding:1:anon-1", "exp:onboarding:1:u1", "exp:onboarding:1:u2"]
    assert (rows[0]["user_id"], rows[0]["anonymous_id"]) == (None, "anon-1")
    expected = {"experiment": "onboarding", "variant": anon_variant, "bucket_version": 1}
    assert json.loads(rows[0]["properties"]) == expected
