"""The JS SDK's flags against the real edge: node (tests/sdk/js/flags_stack.mjs) compares its local answers
with the edge's remote ones, assigns one unit (whose `$exposure` a real worker stores once), and sees a
change pushed on the stream within a second."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from tests.ingest import flagseed
from tests.sdk.js.test_js_sdk import node_or_fail

SCRIPT = Path(__file__).with_name("flags_stack.mjs")
PRO = {"id": "r1", "match": "any", "rollout": 30,
       "conditions": [{"attribute": "plan", "operator": "in", "value": ["pro", "team"]}]}  # fmt: skip


async def line_of(proc: asyncio.subprocess.Process, within: float) -> dict[str, Any]:
    assert proc.stdout is not None
    async with asyncio.timeout(within):
        raw = await proc.stdout.readline()
    assert raw, "node ended early"
    answer: dict[str, Any] = json.loads(raw)
    return answer


async def test_js_sdk_flags_against_the_real_edge(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames, settings: Settings
) -> None:
    node = node_or_fail()
    flag = flagseed.flag("checkout", rollout=20, rules=[PRO])
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flag],
                       experiments=[flagseed.experiment("local-exp")])  # fmt: skip
    env = {**os.environ, "EP_EDGE": str(edge.base_url).rstrip("/"), "EP_KEY": tenant.key}
    proc = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdin is not None
    try:
        compared = await line_of(proc, 60)
        assert compared["ready"] and compared["flushed"]
        assert compared["mismatches"] == []
        assert compared["variant"] in ("control", "treatment")
        await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[{**flag, "enabled": False}])
        sent = time.monotonic()
        proc.stdin.write(b"changed\n")
        await proc.stdin.drain()
        proc.stdin.close()
        changed = await line_of(proc, 10)
        assert changed["ms"] < 1000 and time.monotonic() - sent < 1.5
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    await drain(settings)
    rows = await pool.fetch(
        "SELECT message_id, user_id, properties FROM events WHERE workspace_id = $1 AND event_type = '$exposure'",
        tenant.workspace_id,
    )
    assert [(r["message_id"], r["user_id"]) for r in rows] == [("exp:local-exp:1:ada", "ada")]
    assert json.loads(rows[0]["properties"])["variant"] == compared["variant"]
