"""Both servers as `eventplane ingest` / `eventplane api` run them (eventplane.serving), over real
sockets: slow clients are cut off, proxy headers count only from trusted peers, and /metrics can need a
token."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app as create_api
from eventplane import serving
from eventplane.settings import Secret, Settings
from ingest.app import create_app as create_edge


@contextlib.asynccontextmanager
async def served(app: Any, settings: Settings) -> AsyncIterator[int]:
    """`app` under the production uvicorn config, in this event loop; yields its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = serving.config(app, settings, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
                            timeout_graceful_shutdown=2)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


def _client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")


def _apps(settings: Settings) -> list[tuple[str, Any]]:
    api_settings = replace(settings, jwt_secret=Secret(secrets.token_urlsafe(48)))
    return [("edge", create_edge(settings)), ("api", create_api(api_settings))]


async def _closed_after(port: int, first: bytes, trickle: bytes, limit: float) -> tuple[float, bytes]:
    """Send `first`, then one byte of `trickle` every 50 ms until the server closes; (seconds, reply)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(first)
    reply = b""
    try:
        for i in range(int(limit / 0.05)):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    reply += chunk
            if trickle:
                writer.write(trickle[i % len(trickle) : i % len(trickle) + 1])
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - started, reply


@pytest.mark.parametrize("which", ["edge", "api"])
@pytest.mark.parametrize(
    "first", [b"POST /api/v1/tracking/track HTTP/1.1\r\nHost: x\r\n", b""], ids=["trickle", "idle"]
)
async def test_a_client_slow_to_send_headers_is_cut_off(settings: Settings, which: str, first: bytes) -> None:
    quick = replace(settings, header_timeout=0.5)
    app = dict(_apps(quick))[which]
    async with served(app, quick) as port:
        elapsed, reply = await _closed_after(port, first, b"X-Slow: 1\r\n" if first else b"", limit=5.0)
    assert elapsed < 1.5, f"connection open {elapsed:.2f} s"
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b'"REQUEST_TIMEOUT"' in reply


async def test_the_api_bounds_the_body_too(settings: Settings) -> None:
    quick = replace(settings, body_timeout=0.5, jwt_secret=Secret(secrets.token_urlsafe(48)))
    async with served(create_api(quick), quick) as port:
        head = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: 500\r\n\r\n"
        elapsed, reply = await _closed_after(port, head + b'{"email": ', b" ", limit=5.0)
    assert elapsed < 1.5, f"open {elapsed:.2f} s"
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b'"REQUEST_TIMEOUT"' in reply


async def test_requests_that_are_on_time_are_served(settings: Settings) -> None:
    quick = replace(settings, header_timeout=0.5)
    async with served(create_edge(quick), quick) as port, _client(port) as c:
        for _ in range(3):  # one keep-alive connection, idle between requests for more than half the timeout
            assert (await c.get("/healthz")).status_code == 200
            await asyncio.sleep(0.3)


async def _client_seen(app_settings: Settings) -> str:
    seen: list[str] = []

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(scope["client"][0])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with served(echo, app_settings) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        r = await client.get("/", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 204
    return seen[0]


async def test_forwarded_for_counts_only_from_trusted_proxies(settings: Settings) -> None:
    assert await _client_seen(settings) == "127.0.0.1"  # default: nobody is trusted, loopback included
    assert await _client_seen(replace(settings, trusted_proxies=("10.0.0.0/8",))) == "127.0.0.1"
    assert await _client_seen(replace(settings, trusted_proxies=("127.0.0.1",))) == "203.0.113.9"
    assert await _client_seen(replace(settings, trusted_proxies=("127.0.0.0/8",))) == "203.0.113.9"


@pytest.mark.parametrize("which", ["edge", "api"])
async def test_metrics_need_the_token_when_one_is_set(settings: Settings, which: str) -> None:
    token = secrets.token_urlsafe(24)
    guarded = replace(settings, metrics_token=Secret(token))
    async with served(dict(_apps(guarded))[which], guarded) as port, _client(port) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            r = await client.get("/metrics", headers=headers)
            assert (r.status_code, r.json()["error"]["code"]) == (401, "AUTH_ERROR")
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "eventplane_" in r.text
    async with served(dict(_apps(settings))[which], settings) as port, _client(port) as client:  # no token: open
        assert (await client.get("/metrics")).status_code == 200
