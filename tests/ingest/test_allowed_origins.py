"""A workspace's allowed_origins at the edge: its origins answered, others refused, servers unaffected."""

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


async def test_allowed_origins_are_answered_and_others_refused(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, tenant: Tenant
) -> None:
    r = await edge.post(TRACK, headers=tenant.headers | {"Origin": APP}, json=EVENT)
    assert r.status_code == 202  # no setting: any origin
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


async def test_the_flag_routes_honour_allowed_origins_too(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The review found the flag routes (a browser SDK's config and assignments) skipped the setting."""
    async with pool.acquire() as conn:
        await workspace_config.replace_settings(conn, tenant.workspace_id, {"allowed_origins": [APP]})
    await workspace_config.publish_change(redis, keys, tenant.workspace_id)
    deadline = time.monotonic() + 1.0
    evil = tenant.headers | {"Origin": "https://evil.example"}
    while (r := await edge.get("/api/v1/sdk/config", headers=evil)).status_code == 200:
        assert time.monotonic() < deadline, "the setting did not reach the flag routes within 1 s"
    assert (r.status_code, r.json()["error"]["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    r = await edge.post("/api/v1/experiments/x/assign", headers=evil, json={"user_id": "u"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "ORIGIN_NOT_ALLOWED")
    assert (await edge.get("/api/v1/sdk/config", headers=tenant.headers | {"Origin": APP})).status_code == 200
    assert (await edge.get("/api/v1/sdk/config", headers=tenant.headers)).status_code == 200
