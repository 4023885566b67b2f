"""CORS at the edge from a workspace's allowed_origins: preflight, the allowed origin's header, others refused."""

from __future__ import annotations

import time

import asyncpg
import httpx
from redis.asyncio import Redis

from eventplane import workspace_config
from eventplane.redis_names import RedisNames
from tests.conftest import Tenant

TRACK = "/api/v1/tracking/track"
APP = "https://app.example.com"
EVENT = {"event_type": "page_view", "anonymous_id": "a1"}


async def test_preflight_is_answered(edge: httpx.AsyncClient) -> None:
    r = await edge.options(TRACK, headers={"Origin": APP, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == APP
    assert "x-api-key" in r.headers["access-control-allow-headers"]
    assert "x-eventplane-identity" in r.headers["access-control-allow-headers"]


async def test_allowed_origins_are_answered_and_others_refused(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, tenant: Tenant
) -> None:
    r = await edge.post(TRACK, headers=tenant.headers | {"Origin": APP}, json=EVENT)
    assert r.status_code == 202 and "access-control-allow-origin" not in r.headers  # no setting: no CORS
    async with pool.acquire() as conn:
        await workspace_config.replace_settings(conn, tenant.workspace_id, {"allowed_origins": [APP]})
    await workspace_config.publish_change(redis, keys, tenant.workspace_id)
    deadline = time.monotonic() + 1.0
    while (
        r := await edge.post(TRACK, headers=tenant.headers | {"Origin": "https://evil.example"}, json=EVENT)
    ).status_code == 202:
        assert time.monotonic() < deadline, "the setting did not reach the edge within 1 s"
    assert (r.status_code, r.json()["error"]["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    r = await edge.post(TRACK, headers=tenant.headers | {"Origin": APP}, json=EVENT)
    assert r.status_code == 202 and r.headers["access-control-allow-origin"] == APP
    r = await edge.post(TRACK, headers=tenant.headers, json=EVENT)  # no Origin: a server, unaffected
    assert r.status_code == 202
