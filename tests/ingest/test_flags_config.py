"""GET /api/v1/sdk/config (ETag, 304) and its server-sent-events stream (push within 1 s, heartbeats,
bounds, the end at shutdown), read by real HTTP clients over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis

from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, make_tenant, running_edge
from tests.ingest import flagseed

CONFIG = "/api/v1/sdk/config"
STREAM = "/api/v1/sdk/config/stream"


async def test_config_document_etag_and_304(
    edge: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    r = await edge.get(CONFIG, headers=tenant.headers)
    empty = r.json()
    assert (r.status_code, empty["version"], empty["flags"], empty["experiments"]) == (200, 0, [], [])
    assert r.headers["etag"] == f'"{tenant.workspace_id}:0"'

    definition = flagseed.flag("new-nav", rollout=25)
    version = await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[definition],
                                 experiments=[flagseed.experiment("exp-a")])  # fmt: skip
    r = await wait_for_version(edge, tenant, version)
    doc = r.json()
    assert r.headers["etag"] == f'"{tenant.workspace_id}:{version}"'
    assert doc["workspace_id"] == tenant.workspace_id
    assert [f["key"] for f in doc["flags"]] == ["new-nav"]
    assert doc["flags"][0]["salt"] == definition["salt"] and doc["flags"][0]["rollout"] == 25
    assert [e["key"] for e in doc["experiments"]] == ["exp-a"]

    etag = r.headers["etag"]
    for tag in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = await edge.get(CONFIG, headers={**tenant.headers, "If-None-Match": tag})
        assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag), tag
    r = await edge.get(CONFIG, headers={**tenant.headers, "If-None-Match": f'"{tenant.workspace_id}:0"'})
    assert r.status_code == 200

    writer = await make_tenant(pool, ["track:write"])
    r = await edge.get(CONFIG, headers=writer.headers)
    assert (r.status_code, r.json()["error"]["details"]) == (403, {"required_scope": "flags:read"})


async def wait_for_version(edge: httpx.AsyncClient, tenant: Tenant, version: int) -> httpx.Response:
    deadline = time.monotonic() + 1.0
    while (r := await edge.get(CONFIG, headers=tenant.headers)).json()["version"] < version:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    return r


class SSE:
    """A minimal server-sent-events reader over httpx's streamed response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, within: float) -> dict[str, Any]:
        """The next event or comment: {"event", "id", "data"} or {"comment"}."""
        async with asyncio.timeout(within):
            fields: dict[str, Any] = {}
            async for line in self._lines:
                if line == "":
                    if fields:
                        return fields
                    continue
                if line.startswith(":"):
                    return {"comment": line[1:].strip()}
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            raise EOFError


@contextlib.asynccontextmanager
async def stream(edge: httpx.AsyncClient, tenant: Tenant) -> AsyncIterator[SSE]:
    async with edge.stream("GET", STREAM, headers=tenant.headers, timeout=10) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SSE(response)


async def next_config(sse: SSE, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        event = await sse.next(max(deadline - time.monotonic(), 0.001))
        if event.get("event") == "config":
            doc: dict[str, Any] = orjson.loads(event["data"])
            assert int(event["id"]) == doc["version"]
            return doc


async def test_stream_pushes_each_change_within_one_second(
    settings: Settings, tenant: Tenant, pool: asyncpg.Pool, redis: Redis, keys: RedisNames
) -> None:
    async with running_edge(replace(settings, sse_heartbeat=0.2)) as edge, stream(edge, tenant) as sse:
        assert (await sse.next(2))["retry"] == "2000"
        first = await next_config(sse, 2)
        assert first["workspace_id"] == tenant.workspace_id
        assert (await sse.next(1)) == {"comment": "heartbeat"}  # an idle stream still speaks
        assert "eventplane_ingest_config_streams 1.0" in (await edge.get("/metrics")).text
        for n in range(3):
            version = await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flagseed.flag(f"f{n}")])
            published = time.monotonic()
            doc = await next_config(sse, 1.0)
            assert time.monotonic() - published < 1.0
            assert doc["version"] == version
            assert sorted(f["key"] for f in doc["flags"]) == [f"f{i}" for i in range(n + 1)]


async def test_streams_are_bounded_per_workspace_and_per_edge(settings: Settings, pool: asyncpg.Pool) -> None:
    a, b, c = [await make_tenant(pool, ["read"]) for _ in range(3)]
    bounded = replace(settings, sse_max_per_workspace=2, sse_max_connections=3)
    async with running_edge(bounded) as edge, stream(edge, a) as one, stream(edge, a) as two:
        await next_config(one, 2)
        await next_config(two, 2)
        r = await edge.get(STREAM, headers=a.headers)
        assert (r.status_code, r.json()["error"]["code"]) == (429, "TOO_MANY_STREAMS")
        assert r.headers["retry-after"] == "30"
        async with stream(edge, b) as three:
            await next_config(three, 2)
            r = await edge.get(STREAM, headers=c.headers)  # the edge's bound, though c has none open
            assert (r.status_code, r.json()["error"]["details"]) == (429, {"limit": 3})
        # b hung up: once the edge has seen it go (within a second), there is room again, for c.
        deadline = time.monotonic() + 1.0
        while True:
            async with edge.stream("GET", STREAM, headers=c.headers) as response:
                if response.status_code == 200:
                    await next_config(SSE(response), 2)
                    break
                assert response.status_code == 429
            assert time.monotonic() < deadline, "a closed stream still counts after 1 s"
            await asyncio.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_sigterm_ends_open_streams_and_the_edge_stops_promptly(
    settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    """`eventplane ingest` itself: uvicorn waits up to 20 s for open responses before it stops the app;
    the edge ends its streams at SIGTERM, so it stops in about a second with streams open."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": settings.redis_dsn,
           "EVENTPLANE_REDIS_PREFIX": settings.redis_prefix, "EVENTPLANE_INGEST_PORT": str(port),
           "EVENTPLANE_DATA_DIR": str(tmp_path), "EVENTPLANE_SHUTDOWN_TIMEOUT": "3"}  # fmt: skip
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventplane.cli", "ingest", env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as edge:
            deadline = time.monotonic() + 30
            while True:
                assert server.returncode is None, "eventplane ingest exited"
                try:
                    await edge.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "eventplane ingest did not answer in 30 s"
                    await asyncio.sleep(0.05)
            async with stream(edge, tenant) as one, stream(edge, tenant) as two:
                await next_config(one, 5)
                await next_config(two, 5)
                stopping = time.monotonic()
                server.send_signal(signal.SIGTERM)
                for sse in (one, two):
                    try:
                        while True:
                            await sse.next(5)
                    except EOFError:
                        pass  # the edge ended the response
                ended = time.monotonic() - stopping
        assert ended < 2.0
        await asyncio.wait_for(server.wait(), 10)
        assert time.monotonic() - stopping < 5.0
        assert server.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped
    finally:
        if server.returncode is None:
            server.kill()
            await asyncio.wait_for(server.wait(), 10)
