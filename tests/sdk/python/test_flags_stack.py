"""The Python SDK's flags against the real edge on a real socket, definitions written the way the api
commits them (tests/ingest/flagseed.py), a real worker storing the exposures: local answers equal the
edge's, a change reaches a connected SDK within a second, one `$exposure` row per unit whether the SDK
(local) or the edge (remote-sticky) recorded it. SDK calls run in threads: the edge serves in this loop."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import httpx
from experimentation_sdk import ExperimentationClient
from redis.asyncio import Redis

from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from tests.ingest import flagseed

PRO = {"id": "r1", "match": "any", "rollout": 30,
       "conditions": [{"attribute": "plan", "operator": "in", "value": ["pro", "team"]}]}  # fmt: skip
UNITS = ["ada", "José", "用户123", "👩🏽‍💻", "a:b:c", *[f"u-{i}" for i in range(40)]]


def sdk(edge: httpx.AsyncClient, tenant: Tenant, **options: Any) -> ExperimentationClient:
    url = str(edge.base_url).rstrip("/")
    return ExperimentationClient(tenant.key, url, flush_at_exit=False, flush_interval=0.05, **options)


async def until(condition: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def exposures(pool: asyncpg.Pool, tenant: Tenant) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT message_id, user_id, properties FROM events WHERE workspace_id = $1 AND event_type = '$exposure'"
        " ORDER BY message_id",
        tenant.workspace_id,
    )


async def test_local_answers_equal_the_edges_and_a_change_arrives_within_a_second(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    flag = flagseed.flag("checkout", rollout=20, rules=[PRO])
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flag])
    client = sdk(edge, tenant)
    try:
        assert await asyncio.to_thread(client.wait_for_flags, 5)
        for unit in UNITS:
            for plan in ("pro", "free", None):
                attributes = {"plan": plan} if plan else {}
                remote = await edge.post(
                    "/api/v1/feature-flags/checkout/evaluate",
                    json={"user_id": unit, "attributes": attributes}, headers=tenant.headers,
                )  # fmt: skip
                local = await asyncio.to_thread(client.flag_details, "checkout", user_id=unit, attributes=attributes)
                body = remote.json()
                assert (local.enabled, local.value, local.reason) == (body["enabled"], body["value"], body["reason"])
        sync = client._flags.sync
        assert await until(lambda: sync is not None and sync.streaming, 5)
        await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[{**flag, "enabled": False, "rules": []}])
        changed = time.monotonic()
        assert await until(lambda: client.flag_details("checkout", user_id="ada").reason == "DISABLED", 1.0)
        assert time.monotonic() - changed < 1.0
    finally:
        await asyncio.to_thread(client.close)


async def test_exposures_are_stored_once_per_unit_local_or_remote(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames, settings: Settings
) -> None:
    local = flagseed.experiment("local-exp")
    remote = flagseed.experiment("remote-exp", sticky="remote")
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[local, remote])
    client = sdk(edge, tenant)
    try:
        assert await asyncio.to_thread(client.wait_for_flags, 5)
        variants = {}
        for key in ("local-exp", "remote-exp"):
            answers = [await asyncio.to_thread(client.variant_details, key, user_id="ada") for _ in range(3)]
            assert len({a.variant for a in answers}) == 1 and answers[0].variant in ("control", "treatment")
            variants[key] = answers[0].variant
            assert [a.reason for a in answers] == (
                ["SPLIT"] * 3 if key == "local-exp" else ["SPLIT", "STICKY", "STICKY"]
            )
        assert await asyncio.to_thread(client.flush, 5)
    finally:
        await asyncio.to_thread(client.close)
    await drain(settings)
    rows = await exposures(pool, tenant)
    assert [(r["message_id"], r["user_id"]) for r in rows] == [
        ("exp:local-exp:1:ada", "ada"),
        ("exp:remote-exp:1:ada", "ada"),
    ]
    stored = {json.loads(r["properties"])["experiment"]: json.loads(r["properties"])["variant"] for r in rows}
    assert stored == variants


async def test_a_long_unit_exposed_by_the_sdk_and_by_the_edge_is_stored_once(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames, settings: Settings
) -> None:
    unit = "user-" + "x" * 120  # its "exp:<key>:<version>:<unit>" is over the edge's 100 characters
    await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[flagseed.experiment("long-exp")])
    client = sdk(edge, tenant)
    try:
        assert await asyncio.to_thread(client.wait_for_flags, 5)
        local = await asyncio.to_thread(client.get_variant, "long-exp", user_id=unit)
        assert await asyncio.to_thread(client.flush, 5)
    finally:
        await asyncio.to_thread(client.close)
    r = await edge.post("/api/v1/experiments/long-exp/assign", json={"user_id": unit}, headers=tenant.headers)
    assert r.json()["variant"] == local
    await drain(settings)
    rows = await exposures(pool, tenant)
    assert len(rows) == 1 and rows[0]["user_id"] == unit
    assert rows[0]["message_id"].startswith("exp:") and len(rows[0]["message_id"]) == 68
