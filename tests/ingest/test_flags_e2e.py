"""End to end, as the README's quickstart goes: definitions made through the management API (an admin
key), evaluated by the edge and by the Python SDK (locally from the streamed config, remotely once an
experiment is "sticky": "remote"), exposures stored by the worker, a weight change that moves nobody
already exposed, and a re-randomization that does."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import httpx
import uvicorn
from experimentation_sdk import ExperimentationClient

from api.app import create_app as create_api
from eventplane.settings import Settings
from tests.conftest import KEEP_ALIVE, drain, make_tenant

UNITS = [f"e2e-{i}" for i in range(100)]


@contextlib.asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real management API on a real socket (uvicorn, in this event loop)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_api(settings), lifespan="on", log_level="warning", timeout_keep_alive=KEEP_ALIVE)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


async def assign_all(edge: httpx.AsyncClient, headers: dict[str, str], units: list[str]) -> dict[str, dict[str, str]]:
    gate = asyncio.Semaphore(20)

    async def one(unit: str) -> dict[str, str]:
        async with gate:
            r = await edge.post("/api/v1/experiments/pricing/assign", json={"user_id": unit}, headers=headers)
        assert r.status_code == 200, r.text
        answer: dict[str, str] = r.json()
        return answer

    return dict(zip(units, await asyncio.gather(*(one(u) for u in units)), strict=True))


async def edge_version(edge: httpx.AsyncClient, headers: dict[str, str], at_least: int) -> dict[str, object]:
    deadline = time.monotonic() + 1.0
    while (doc := (await edge.get("/api/v1/sdk/config", headers=headers)).json())["version"] < at_least:
        assert time.monotonic() < deadline, "the edge did not see the change within 1 s"
        await asyncio.sleep(0.01)
    return doc  # type: ignore[no-any-return]


async def test_quickstart_end_to_end(edge: httpx.AsyncClient, settings: Settings, pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool, ["admin"])
    ws, headers = tenant.workspace_id, tenant.headers
    async with running_api(replace(settings, password_time_cost=1, password_memory_kib=8 * 1024)) as api:
        r = await api.post(f"/workspaces/{ws}/feature-flags", headers=headers,
                           json={"key": "new-checkout", "enabled": True, "rollout": 100})  # fmt: skip
        assert r.status_code == 201, r.text
        variants = [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}]
        experiment = {"key": "pricing", "variants": variants, "conversion": {"event_type": "purchase"}}
        r = await api.post(f"/workspaces/{ws}/experiments", headers=headers, json=experiment)
        assert r.status_code == 201, r.text
        r = await api.patch(f"/workspaces/{ws}/experiments/pricing", headers=headers, json={"status": "running"})
        assert r.status_code == 200, r.text
        version = (await edge.get("/api/v1/sdk/config", headers=headers)).json()["version"]

        r = await edge.post("/api/v1/feature-flags/new-checkout/evaluate", json={"user_id": "u1"}, headers=headers)
        assert r.json() == {"key": "new-checkout", "enabled": True, "value": True, "reason": "SPLIT"}
        before = await assign_all(edge, headers, UNITS)

        client = ExperimentationClient(tenant.key, str(edge.base_url), flag_timeout=2.0)
        try:
            assert await asyncio.to_thread(client.wait_for_flags, 5)
            assert await asyncio.to_thread(client.is_enabled, "new-checkout", user_id="u1")
            local = [await asyncio.to_thread(client.get_variant, "pricing", user_id=u) for u in UNITS[:20]]
            assert local == [before[u]["variant"] for u in UNITS[:20]]  # the SDK decides as the edge did
            assert await asyncio.to_thread(client.flush, 5)
        finally:
            await asyncio.to_thread(client.close, 5)

        await drain(settings)
        exposed = await pool.fetchval(
            "SELECT count(*) FROM events WHERE workspace_id = $1 AND event_type = '$exposure'", ws
        )
        assert exposed == len(UNITS)  # edge and SDK exposures of a unit share one message_id
        assignments = await pool.fetchval("SELECT count(*) FROM experiment_assignments WHERE workspace_id = $1", ws)
        assert assignments == len(UNITS)

        skewed = [{"key": "control", "weight": 1}, {"key": "treatment", "weight": 99}]
        r = await api.patch(f"/workspaces/{ws}/experiments/pricing", headers=headers, json={"variants": skewed})
        assert r.status_code == 200, r.text
        doc = await edge_version(edge, headers, version + 1)
        assert doc["experiments"][0]["sticky"] == "remote"  # type: ignore[index]
        after = await assign_all(edge, headers, UNITS)
        assert {u: a["variant"] for u, a in after.items()} == {u: a["variant"] for u, a in before.items()}
        assert {a["reason"] for a in after.values()} == {"STICKY"}
        client = ExperimentationClient(tenant.key, str(edge.base_url), flag_timeout=2.0)
        try:  # a "remote" experiment: the SDK asks the edge, which knows who was exposed
            assert await asyncio.to_thread(client.wait_for_flags, 5)
            remote = [await asyncio.to_thread(client.get_variant, "pricing", user_id=u) for u in UNITS[:20]]
            assert remote == [before[u]["variant"] for u in UNITS[:20]]
        finally:
            await asyncio.to_thread(client.close, 5)

        r = await api.post(f"/workspaces/{ws}/experiments/pricing/rerandomize", headers=headers)
        assert r.status_code == 200, r.text
        await edge_version(edge, headers, version + 2)
        moved = await assign_all(edge, headers, UNITS)
        assert {a["reason"] for a in moved.values()} == {"SPLIT"}
        assert sum(moved[u]["variant"] != before[u]["variant"] for u in UNITS) > 25
