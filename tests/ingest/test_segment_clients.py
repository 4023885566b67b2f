"""Segment's own clients, unmodified, pointed at the real edge: PyPI segment-analytics-python and npm
@segment/analytics-node (installed once into .venv/node-cache; node and npm must be installed)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest_asyncio
from segment.analytics.client import Client  # type: ignore[import-untyped]

from eventplane.settings import Settings
from tests.conftest import Tenant, drain, running_edge
from tests.node_cache import NODE_CACHE, npm_package

ANALYTICS_NODE = "@segment/analytics-node@3.1.0"
DEADLINE = 120.0  # seconds for npm install or the node script, each


@pytest_asyncio.fixture
async def edge_url(settings: Settings) -> AsyncIterator[str]:
    """An edge of this test's own, reachable from other processes and threads by URL."""
    async with running_edge(settings) as client:
        yield str(client.base_url).rstrip("/")


async def rows_by_type(pool: asyncpg.Pool, tenant: Tenant) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch("SELECT * FROM events WHERE workspace_id = $1", tenant.workspace_id)
    return {row["event_type"]: row for row in rows}


def send_with_python_client(key: str, host: str) -> list[str]:
    errors: list[str] = []
    client = Client(write_key=key, host=host, on_error=lambda e, batch: errors.append(repr(e)), max_retries=1)
    client.track(user_id="py-1", event="Order Completed", properties={"revenue": 9.5}, message_id="py-track")
    client.identify(user_id="py-1", traits={"email": "ada@example.com"}, message_id="py-identify")
    client.page(user_id="py-1", category="Docs", name="Pricing", properties={"path": "/p"}, message_id="py-page")
    client.screen(user_id="py-1", name="Home", message_id="py-screen")
    client.group(user_id="py-1", group_id="g-1", traits={"name": "Acme"}, message_id="py-group")
    client.alias(previous_id="anon-1", user_id="py-1", message_id="py-alias")
    client.flush()
    client.join()
    return errors


async def test_segment_analytics_python(edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings) -> None:
    errors = await asyncio.wait_for(asyncio.to_thread(send_with_python_client, tenant.key, edge_url), DEADLINE)
    assert errors == []
    await drain(settings)
    rows = await rows_by_type(pool, tenant)
    assert set(rows) == {"Order Completed", "$identify", "$page", "$screen", "$group", "$alias"}
    assert {r["message_id"] for r in rows.values()} == {f"py-{k}" for k in ("track", "identify", "page", "screen",
                                                                              "group", "alias")}  # fmt: skip
    assert all(r["user_id"] == "py-1" for r in rows.values())
    props = {t: json.loads(r["properties"]) for t, r in rows.items()}
    assert props["Order Completed"] == {"revenue": 9.5}
    assert props["$identify"] == {"$traits": {"email": "ada@example.com"}}
    assert props["$page"] == {"path": "/p", "$name": "Pricing", "$category": "Docs"}
    assert props["$screen"]["$name"] == "Home"
    assert props["$group"] == {"$group_id": "g-1", "$traits": {"name": "Acme"}}
    assert props["$alias"] == {"$previous_id": "anon-1"}
    context = json.loads(rows["Order Completed"]["context"])
    assert context["library"]["name"] == "analytics-python"


NODE_SCRIPT = """
const { Analytics } = require('@segment/analytics-node')
const analytics = new Analytics({ writeKey: process.env.KEY, host: process.env.HOST, flushInterval: 50,
                                  maxRetries: 1 })
analytics.on('error', (err) => { console.error('segment error', err); process.exitCode = 1 })
analytics.on('http_request', (r) => console.log('request', r.url))
const userId = 'node-1'
analytics.track({ userId, event: 'Node Event', properties: { a: 1 }, messageId: 'node-track' })
analytics.identify({ userId, traits: { plan: 'pro' }, messageId: 'node-identify' })
analytics.page({ userId, name: 'Pricing', properties: { path: '/p' }, messageId: 'node-page' })
analytics.screen({ userId, name: 'Home', messageId: 'node-screen' })
analytics.group({ userId, groupId: 'g-2', traits: { name: 'Acme' }, messageId: 'node-group' })
analytics.alias({ userId, previousId: 'anon-2', messageId: 'node-alias' })
analytics.closeAndFlush({ timeout: 20000 }).then(() => console.log('flushed'))
"""


async def run(*command: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), DEADLINE)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def analytics_node() -> Path:
    """The npm package, installed into the cache folder the first time."""
    why = "This test runs @segment/analytics-node"
    await npm_package(ANALYTICS_NODE, "@segment/analytics-node/package.json", why)
    return NODE_CACHE


async def test_segment_analytics_node(edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings) -> None:
    cache = await analytics_node()
    script = cache / f"send-{uuid.uuid4().hex[:8]}.js"
    script.write_text(NODE_SCRIPT)
    try:
        env = {**os.environ, "KEY": tenant.key, "HOST": edge_url}
        code, out = await run("node", str(script), cwd=cache, env=env)
    finally:
        script.unlink()
    assert code == 0 and "flushed" in out, out
    await drain(settings)
    rows = await rows_by_type(pool, tenant)
    assert set(rows) == {"Node Event", "$identify", "$page", "$screen", "$group", "$alias"}, out
    assert {r["message_id"] for r in rows.values()} == {f"node-{k}" for k in ("track", "identify", "page", "screen",
                                                                                "group", "alias")}  # fmt: skip
    props: dict[str, Any] = {t: json.loads(r["properties"]) for t, r in rows.items()}
    assert props["Node Event"] == {"a": 1}
    assert props["$identify"] == {"$traits": {"plan": "pro"}}
    assert props["$page"]["$name"] == "Pricing" and props["$page"]["path"] == "/p"
    assert props["$group"] == {"$group_id": "g-2", "$traits": {"name": "Acme"}}
    assert props["$alias"] == {"$previous_id": "anon-2"}
    assert json.loads(rows["Node Event"]["context"])["library"]["name"] == "@segment/analytics-node"


async def test_a_bad_key_is_reported_to_the_python_client(edge_url: str) -> None:
    def send() -> list[str]:
        errors: list[str] = []
        client = Client(write_key="ep_live_bogus", host=edge_url, on_error=lambda e, b: errors.append(str(e)),
                        max_retries=0)  # fmt: skip
        client.track(user_id="u", event="e")
        client.flush()
        client.join()
        return errors

    errors = await asyncio.wait_for(asyncio.to_thread(send), DEADLINE)
    assert len(errors) == 1 and "401" in errors[0], errors
