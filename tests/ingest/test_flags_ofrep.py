"""OFREP at the edge: a real OpenFeature client (PyPI openfeature-sdk with openfeature-provider-ofrep)
against the real edge, and the protocol's shapes over HTTP (open-feature/protocol service/openapi.yaml)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails
from redis.asyncio import Redis

from eventplane.redis_names import RedisNames
from tests.conftest import Tenant, make_tenant
from tests.ingest import flagseed

ONE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"
COLORS = [{"key": "blue", "value": "#00f", "weight": 50}, {"key": "green", "value": "#0f0", "weight": 50}]


async def seed(pool: asyncpg.Pool, redis: Redis, keys: RedisNames, tenant: Tenant) -> None:
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[
        flagseed.flag("dark-mode"),
        flagseed.flag("color", values=COLORS, default_value="#000", on_value=None),
        flagseed.flag("half", rollout=50),
        flagseed.flag("retired", enabled=False),
    ])  # fmt: skip


def openfeature_client(base_url: str, key: str) -> OpenFeatureClient:
    domain = uuid.uuid4().hex
    api.set_provider(OFREPProvider(base_url, headers_factory=lambda: {"X-API-Key": key}), domain=domain)
    return api.get_client(domain)


async def test_an_openfeature_client_with_the_ofrep_provider_works_unchanged(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    await seed(pool, redis, keys, tenant)
    client = openfeature_client(str(edge.base_url), tenant.key)
    ctx = EvaluationContext(targeting_key="user-7", attributes={"plan": "pro"})

    def resolve() -> list[FlagEvaluationDetails[Any]]:  # the provider is synchronous (requests): off the event loop
        return [
            client.get_boolean_details("dark-mode", False, ctx),
            client.get_string_details("color", "none", ctx),
            client.get_boolean_details("retired", True, ctx),
            client.get_boolean_details("no-such-flag", True, ctx),
            client.get_boolean_details("half", False, EvaluationContext()),
            client.get_string_details("dark-mode", "x", ctx),
        ]

    dark, color, retired, missing, keyless, mismatch = await asyncio.to_thread(resolve)
    assert (dark.value, dark.reason, dark.variant, dark.error_code) == (True, "SPLIT", "on", None)
    remote = (await edge.post("/api/v1/feature-flags/color/evaluate", json={"user_id": "user-7"},
                              headers=tenant.headers)).json()  # fmt: skip
    assert (color.value, color.variant, color.reason) == (remote["value"], remote["variant"], "SPLIT")
    assert (retired.value, retired.reason, retired.variant) == (False, "DISABLED", "off")
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    assert (keyless.value, keyless.error_code) == (False, ErrorCode.TARGETING_KEY_MISSING)
    assert (mismatch.value, mismatch.error_code) == ("x", ErrorCode.TYPE_MISMATCH)


async def test_a_key_without_flags_read_gets_the_callers_default(edge: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    writer = await make_tenant(pool, ["track:write"])
    client = openfeature_client(str(edge.base_url), writer.key)
    details = await asyncio.to_thread(client.get_boolean_details, "any", True, EvaluationContext("u"))
    assert (details.value, details.error_code) == (True, ErrorCode.GENERAL)
    r = await edge.post(ONE.format("any"), json={"context": {"targetingKey": "u"}}, headers=writer.headers)
    assert r.status_code == 403
    r = await edge.post(ONE.format("any"), json={"context": {"targetingKey": "u"}})
    assert r.status_code == 401


async def test_single_evaluation_shapes(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    await seed(pool, redis, keys, tenant)
    r = await edge.post(ONE.format("dark-mode"), json={"context": {"targetingKey": "u1"}}, headers=tenant.headers)
    body = r.json()
    assert r.status_code == 200
    assert {k: body[k] for k in ("key", "value", "reason", "variant")} == {
        "key": "dark-mode", "value": True, "reason": "SPLIT", "variant": "on",
    }  # fmt: skip
    assert body["metadata"]["enabled"] is True
    r = await edge.post(ONE.format("nope"), json={"context": {"targetingKey": "u1"}}, headers=tenant.headers)
    assert (r.status_code, r.json()["key"], r.json()["errorCode"]) == (404, "nope", "FLAG_NOT_FOUND")
    assert r.json()["errorDetails"]
    cases = [
        (b"{", "PARSE_ERROR"),
        (b"[]", "PARSE_ERROR"),
        (b'{"context": []}', "INVALID_CONTEXT"),
        (b'{"context": {"targetingKey": 7}}', "INVALID_CONTEXT"),
        (b'{"context": {}}', "TARGETING_KEY_MISSING"),
    ]
    for raw, code in cases:
        r = await edge.post(ONE.format("half"), content=raw, headers=tenant.headers)
        assert (r.status_code, r.json()["key"], r.json()["errorCode"]) == (400, "half", code), raw


async def test_bulk_evaluation_etag_and_304(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    await seed(pool, redis, keys, tenant)
    context = {"context": {"targetingKey": "u1", "plan": "pro"}}
    r = await edge.post(BULK, json=context, headers=tenant.headers)
    assert r.status_code == 200
    flags = {f["key"]: f for f in r.json()["flags"]}
    assert sorted(flags) == ["color", "dark-mode", "half", "retired"]
    assert flags["retired"]["reason"] == "DISABLED" and flags["dark-mode"]["value"] is True
    etag = r.headers["etag"]

    r = await edge.post(BULK, json=context, headers={**tenant.headers, "If-None-Match": etag})
    assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag)
    other = {"context": {"targetingKey": "u2", "plan": "pro"}}
    r = await edge.post(BULK, json=other, headers={**tenant.headers, "If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag  # another context, another answer

    r = await edge.post(BULK, json={"context": {}}, headers=tenant.headers)
    items = {f["key"]: f for f in r.json()["flags"]}
    assert items["half"] == {
        "key": "half",
        "errorCode": "TARGETING_KEY_MISSING",
        "errorDetails": items["half"]["errorDetails"],
    }
    assert items["dark-mode"]["value"] is True  # rollout 100 needs no unit

    r = await edge.post(BULK, content=b'{"context": 1}', headers=tenant.headers)
    assert (r.status_code, r.json()["errorCode"]) == (400, "INVALID_CONTEXT")
    assert "key" not in r.json()

    version = await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flagseed.flag("extra")])
    deadline = asyncio.get_running_loop().time() + 1.0
    while (
        r := await edge.post(BULK, json=context, headers={**tenant.headers, "If-None-Match": etag})
    ).status_code == 304:
        assert asyncio.get_running_loop().time() < deadline, "a change still answered 304 after 1 s"
        await asyncio.sleep(0.02)
    assert r.status_code == 200 and f":{version}:" in r.headers["etag"]
