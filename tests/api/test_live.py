"""`GET .../events/live`: an event the worker stores reaches a connected client within a second (edge ->
queue -> worker -> commit -> pub/sub -> api -> SSE, all real), filtered; a workspace has at most
`live_max_streams` streams; a client that stops reading is dropped with a final event."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import pytest_asyncio
import uvicorn
from redis.asyncio import Redis

from api.app import create_app
from eventplane import servers, tenants
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import KEEP_ALIVE, drain, make_tenant, own_valkey

WS = "/api/v1/workspaces"


class Stream:
    """An SSE client reading in the background: comment lines and (event, data) pairs, as they arrive."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._run(client, url, headers))

    async def _run(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        async with client.stream("GET", url, headers=headers) as response:
            self.status.set_result(response.status_code)
            if response.status_code != 200:
                await self.lines.put((await response.aread()).decode())
                return
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                await self.lines.put(line)

    async def next_event(self, within: float) -> tuple[str, dict[str, object]]:
        """The next (event name, data), skipping comments, within `within` seconds."""
        name = ""
        async with asyncio.timeout(within):
            while True:
                line = await self.lines.get()
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    return name, json.loads(line.removeprefix("data: "))

    async def connected(self) -> None:
        async with asyncio.timeout(5):
            assert await self.status == 200, await self.lines.get()
            assert await self.lines.get() == ": connected"

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_a_stored_event_reaches_a_live_client_within_a_second(
    live_api: str, edge: httpx.AsyncClient, settings: Settings, pool: asyncpg.Pool
) -> None:
    tenant = await make_tenant(pool, ["write"])
    _, key = await tenants.create_api_key(pool, workspace_id=tenant.workspace_id, name="r", scope_names=["events:read"])
    other = await make_tenant(pool, ["write"])
    async with httpx.AsyncClient(base_url=live_api, timeout=10) as client:
        url = f"{WS}/{tenant.workspace_id}/events/live?event_type=signup&property=plan:pro"
        stream = Stream(client, url, {"X-API-Key": key})
        await stream.connected()
        batch = {"events": [
            {"event_type": "page_view", "user_id": "u1", "properties": {"plan": "pro"}, "message_id": "lv-1"},
            {"event_type": "signup", "user_id": "u1", "properties": {"plan": "free"}, "message_id": "lv-2"},
            {"event_type": "signup", "user_id": "u2", "properties": {"plan": "pro"}, "message_id": "lv-3"},
        ]}  # fmt: skip
        r = await edge.post("/api/v1/tracking/batch", json=batch, headers=tenant.headers)
        assert r.status_code == 202, r.text
        theirs = {"event_type": "signup", "user_id": "u2", "properties": {"plan": "pro"}, "message_id": "lv-4"}
        r = await edge.post(
            "/api/v1/tracking/track", json=theirs, headers=other.headers
        )  # another workspace's: not shown
        assert r.status_code == 202, r.text
        await drain(settings)
        stored = time.monotonic()  # every row above is committed by now
        name, event = await stream.next_event(within=1.0)
        assert time.monotonic() - stored < 1.0
        assert name == "event" and event["message_id"] == "lv-3" and event["user_id"] == "u2"
        assert event["properties"] == {"plan": "pro"} and event["event_type"] == "signup"
        row = await pool.fetchrow("SELECT \"timestamp\" FROM events WHERE message_id = 'lv-3'")
        assert row is not None and dt.datetime.fromisoformat(str(event["timestamp"])) == row["timestamp"]
        assert all(line.startswith(":") or not line for line in _pending(stream))  # nothing else matched
        await stream.close()


def _pending(stream: Stream) -> list[str]:
    out = []
    while not stream.lines.empty():
        out.append(stream.lines.get_nowait())
    return out


async def test_a_workspace_has_at_most_live_max_streams(live_api: str, settings: Settings, pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool, ["admin"])
    url = f"{WS}/{tenant.workspace_id}/events/live"
    async with httpx.AsyncClient(base_url=live_api, timeout=10) as client:
        streams = [Stream(client, url, {"X-API-Key": tenant.key}) for _ in range(settings.live_max_streams)]
        for s in streams:
            await s.connected()
        r = await client.get(url, headers={"X-API-Key": tenant.key})
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "TOO_MANY_STREAMS" and r.json()["error"]["details"] == {"limit": 5}
        other = await make_tenant(pool, ["admin"])  # another workspace is not affected
        extra = Stream(client, f"{WS}/{other.workspace_id}/events/live", {"X-API-Key": other.key})
        await extra.connected()
        await streams.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the closed stream's subscription ends once the server sees the disconnect
            again = Stream(client, url, {"X-API-Key": tenant.key})
            if await again.status == 200:
                break
            await again.close()
            assert time.monotonic() < deadline, "a closed stream still counted after 5 s"
            await asyncio.sleep(0.05)
        for s in [*streams, extra, again]:
            await s.close()


@pytest_asyncio.fixture
async def small_queue_api(api_settings: Settings) -> AsyncIterator[str]:
    async with serving(replace(api_settings, live_queue_events=10)) as address:
        yield address


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """An api of these settings on a real socket in this event loop; yields host:port."""
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            app, lifespan="on", log_level="warning", timeout_graceful_shutdown=2, timeout_keep_alive=KEEP_ALIVE
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_client_that_stops_reading_is_dropped_with_a_final_event(
    small_queue_api: str, settings: Settings, redis: Redis, keys: RedisNames, pool: asyncpg.Pool
) -> None:
    tenant = await make_tenant(pool, ["admin"])
    host, port = small_queue_api.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {WS}/{tenant.workspace_id}/events/live HTTP/1.1\r\nHost: x\r\nX-API-Key: {tenant.key}\r\n\r\n"
                 .encode())  # fmt: skip
    head = await asyncio.wait_for(reader.readuntil(b": connected\n\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    # The client reads nothing more while ~25 MB of events are published: the socket buffers fill, then the
    # stream's queue of 10, and the stream ends with `event: dropped`.
    big = "x" * 65_536
    channel = keys.live_events(tenant.workspace_id)
    for i in range(400):
        event = {"message_id": f"s-{i}", "event_type": "e", "user_id": None, "anonymous_id": None, "value": None,
                 "properties": {"big": big}, "timestamp": "2026-12-01T00:00:00Z",
                 "received_at": "2026-12-01T00:00:00Z", "context": None}  # fmt: skip
        await redis.publish(channel, json.dumps([event]))
    received = b""
    async with asyncio.timeout(30):
        while chunk := await reader.read(1 << 20):
            received += chunk
            if b"0\r\n\r\n" in received[-16:]:  # the chunked body's end
                break
    writer.close()
    tail = received[-400:].decode(errors="replace")
    assert "event: dropped" in tail and "SLOW_CLIENT" in tail
    assert received.count(b"event: event") < 400


async def test_a_stream_whose_redis_is_lost_ends_with_a_final_event(
    api_settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    tenant = await make_tenant(pool, ["admin"])
    with own_valkey(tmp_path) as (url, data):
        async with serving(replace(api_settings, redis_url=url)) as address, httpx.AsyncClient(timeout=10) as client:
            stream = Stream(client, f"http://{address}{WS}/{tenant.workspace_id}/events/live",
                            {"X-API-Key": tenant.key})  # fmt: skip
            await stream.connected()
            servers.stop_valkey(data)
            name, body = await stream.next_event(within=20)
            assert name == "dropped" and body["code"] == "LIVE_UNAVAILABLE"
            await stream.close()
