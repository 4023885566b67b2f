"""The JavaScript SDK against the real stack: node runs sdk/js/test/integration/ against a real edge on
a real socket (through its own fault proxy where a test needs one) while a real worker stores what the
edge queued; then Postgres must hold what the node tests declared (EP_OUT/<test>.json)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from api.app import create_app as create_api
from eventplane import client_drops
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import drain, make_tenant, running_edge

ROOT = Path(__file__).resolve().parents[3]
INTEGRATION = ROOT / "sdk" / "js" / "test" / "integration"
DECLARED = {
    "forced_retry",
    "lost_response",
    "retry_after",
    "queue_full",
    "too_large",
    "close_at_exit",
    "before_exit",
    "clock_skew",
}
NODE_DEADLINE = 180.0
WORKER_DEADLINE = 60.0


def node_or_fail() -> str:
    node = shutil.which("node")
    message = "the JS SDK tests need Node 18+ on PATH (e.g. `apt-get install nodejs`, or https://nodejs.org)"
    assert node is not None, f"node not found: {message}"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    found = re.match(r"v(\d+)\.", version)
    assert found is not None and int(found[1]) >= 18, f"node {version} is too old: {message}"
    return node


async def run_node_while_working(node: str, settings: Settings, env: dict[str, str]) -> tuple[int, str]:
    """Run node; meanwhile a real worker (burst mode, in this event loop) stores what the edge queues."""
    proc = await asyncio.create_subprocess_exec(
        node,
        "--test",
        str(INTEGRATION),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    done = asyncio.ensure_future(proc.communicate())

    async def keep_draining() -> None:
        while not done.done():
            await drain(settings)
            await asyncio.wait([done], timeout=0.25)

    worker = asyncio.create_task(keep_draining())
    try:
        await asyncio.wait_for(asyncio.shield(done), NODE_DEADLINE)
    except TimeoutError:
        proc.kill()
        out, _ = await done
        partial = out.decode(errors="replace")
        raise AssertionError(f"node did not finish within {NODE_DEADLINE:g} s:\n{partial}") from None
    finally:
        async with asyncio.timeout(WORKER_DEADLINE):  # a worker that cannot empty the queue fails here, plainly
            await worker
    out, _ = done.result()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def read_declarations(directory: Path) -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text()) for p in directory.glob("*.json")}


def client_dropped(metrics_text: str) -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "eventplane_ingest_client_dropped_total"
    }


async def test_js_sdk_delivers_exactly_once_through_faults_and_reports_its_drops(
    fresh: Settings, pool: asyncpg.Pool, redis: Redis, tmp_path: Path
) -> None:
    node = node_or_fail()
    tenant = await make_tenant(pool)
    async with running_edge(fresh) as edge:
        env = {**os.environ, "EP_EDGE_URL": str(edge.base_url), "EP_API_KEY": tenant.key, "EP_OUT": str(tmp_path)}
        env.pop("EXPERIMENTATION_API_KEY", None)
        status, out = await run_node_while_working(node, fresh, env)
        assert status == 0, f"node --test {INTEGRATION} failed:\n{out}"
        metrics = client_dropped((await edge.get("/metrics")).text)
    async with asyncio.timeout(WORKER_DEADLINE):
        await drain(fresh)

    declared = read_declarations(tmp_path)
    assert set(declared) == DECLARED, f"node tests that declared nothing (skipped?):\n{out}"
    once = [i for d in declared.values() for i in d["once"]]
    absent = [i for d in declared.values() for i in d["absent"]]
    rows = await pool.fetch(
        """SELECT message_id, count(*) AS n, min(event_type) AS event_type, min(user_id) AS user_id,
                  max(abs(extract(epoch FROM received_at - "timestamp"))) AS skew_seconds,
                  min(anonymous_id) AS anonymous_id, min(value) AS value, min(properties::text) AS properties
           FROM events WHERE workspace_id = $1 GROUP BY message_id""",
        tenant.workspace_id,
    )
    stored = {row["message_id"]: row for row in rows}
    assert {i: stored[i]["n"] if i in stored else 0 for i in once} == dict.fromkeys(once, 1)
    assert [i for i in absent if i in stored] == []
    assert set(stored) == set(once), "stored events nobody declared"
    on_time = [i for d in declared.values() for i in d["on_time"]]
    assert {i: stored[i]["skew_seconds"] < 60 for i in on_time} == dict.fromkeys(on_time, True)
    for d in declared.values():
        for message_id, fields in d["fields"].items():
            row: dict[str, Any] = dict(stored[message_id])
            if "properties" in fields:
                row["properties"] = json.loads(row["properties"])
            assert {k: row[k] for k in fields} == fields, message_id

    drops: dict[str, int] = {}
    for d in declared.values():
        for reason, count in d["drops"].items():
            drops[reason] = drops.get(reason, 0) + count
    assert metrics == {reason: float(n) for reason, n in drops.items()}
    await client_drops.fold(redis, RedisNames(fresh.redis_prefix), pool)
    folded = await pool.fetch(
        "SELECT reason, sum(dropped)::int AS n FROM client_drops_daily WHERE workspace_id = $1 GROUP BY reason",
        tenant.workspace_id,
    )
    assert {row["reason"]: row["n"] for row in folded} == drops
    assert await usage_client_dropped(fresh, tenant.workspace_id, tenant.key) == drops


async def usage_client_dropped(settings: Settings, workspace_id: str, key: str) -> dict[str, int]:
    """What the workspace's owner sees: GET /api/v1/workspaces/{id}/usage on the real api app."""
    app = create_api(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as api:
            r = await api.get(f"/api/v1/workspaces/{workspace_id}/usage", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    dropped: dict[str, int] = r.json()["client_dropped"]
    return dropped
