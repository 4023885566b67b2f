"""The golden vectors (sdk/vectors/evaluation.json, shared with the Python and JS SDKs' tests) evaluated
through the edge's own endpoints: each case's definition is committed in a workspace of its own, then
asked over HTTP, as evaluate/assign and as OFREP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis

from eventplane.redis_names import RedisNames
from tests.conftest import Tenant, make_tenant
from tests.ingest import flagseed

VECTORS = Path(__file__).resolve().parents[2] / "sdk" / "vectors" / "evaluation.json"
CASES: list[dict[str, Any]] = orjson.loads(VECTORS.read_bytes())


@pytest.fixture(scope="module")
def flag_cases() -> list[dict[str, Any]]:
    return [c for c in CASES if "flag" in c]


async def committed(pool: asyncpg.Pool, redis: Redis, keys: RedisNames, case: dict[str, Any]) -> Tenant:
    tenant = await make_tenant(pool, ["read"])
    if "flag" in case:
        await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[case["flag"]])
    else:
        await flagseed.put(pool, redis, keys, tenant.workspace_id, experiments=[case["experiment"]])
    return tenant


def expected_answer(case: dict[str, Any]) -> dict[str, Any]:
    definition = case.get("flag") or case["experiment"]
    detail = {k: v for k, v in (case.get("detail") or {}).items() if v is not None}
    if "experiment" in case:
        detail.pop("variant", None)  # an assignment's variant is in `expected`
    return {"key": definition["key"], **case["expected"], **detail}


async def ask(edge: httpx.AsyncClient, tenant: Tenant, case: dict[str, Any]) -> dict[str, Any]:
    if "flag" in case:
        path = f"/api/v1/feature-flags/{case['flag']['key']}/evaluate"
    else:
        path = f"/api/v1/experiments/{case['experiment']['key']}/assign"
    r = await edge.post(path, json=case["context"], headers=tenant.headers)
    assert r.status_code == 200, (case["name"], r.text)
    answer: dict[str, Any] = r.json()
    return answer


async def test_every_vector_through_evaluate_and_assign(
    edge: httpx.AsyncClient, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    assert len(CASES) >= 60
    gate = asyncio.Semaphore(16)

    async def check(case: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        async with gate:
            tenant = await committed(pool, redis, keys, case)
            return case["name"], await ask(edge, tenant, case), expected_answer(case)

    results = await asyncio.gather(*(check(c) for c in CASES))
    wrong = [(name, got, want) for name, got, want in results if got != want]
    assert wrong == []


async def test_every_flag_vector_through_ofrep(
    edge: httpx.AsyncClient, pool: asyncpg.Pool, redis: Redis, keys: RedisNames, flag_cases: list[dict[str, Any]]
) -> None:
    gate = asyncio.Semaphore(16)

    async def check(case: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        async with gate:
            tenant = await committed(pool, redis, keys, case)
            ctx = case["context"]
            context = {**(ctx.get("attributes") or {})}
            if ctx.get("user_id") is not None:
                context["targetingKey"] = ctx["user_id"]
            if ctx.get("anonymous_id") is not None:
                context["anonymous_id"] = ctx["anonymous_id"]
            key = case["flag"]["key"]
            r = await edge.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": context}, headers=tenant.headers)
        got: dict[str, Any] = r.json()
        expected, detail = case["expected"], case.get("detail") or {}
        if expected["reason"] == "ERROR":
            return case["name"], {"status": r.status_code, "errorCode": got.get("errorCode")}, {
                "status": 400, "errorCode": detail["error_code"],
            }  # fmt: skip
        want: dict[str, Any] = {
            "status": 200, "key": key, "reason": expected["reason"],
            "variant": detail.get("variant") or ("on" if expected["enabled"] else "off"),
        }  # fmt: skip
        if expected["value"] is not None:
            want["value"] = expected["value"]
        got = {"status": r.status_code, **{k: v for k, v in got.items() if k != "metadata"}}
        return case["name"], got, want

    results = await asyncio.gather(*(check(c) for c in flag_cases))
    wrong = [(name, got, want) for name, got, want in results if got != want]
    assert wrong == []
