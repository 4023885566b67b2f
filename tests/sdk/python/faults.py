"""A fault-injecting HTTP proxy in front of the real edge, on a real socket, run in the test's loop.

Each request takes the next action from a script: forward it, answer 400, 503 or 429 (with
Retry-After) without forwarding, or forward it and then close the connection without answering (a lost response:
the edge stored the batch, the client never learns it). Every request is recorded as the edge saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

FORWARD_HEADERS = ("x-api-key", "authorization", "content-type", "content-encoding", "x-request-id")


@dataclass
class Seen:
    at: float  # time.monotonic() when the request had arrived whole
    action: str
    headers: dict[str, str]
    raw_size: int
    body: dict[str, Any]

    @property
    def message_ids(self) -> list[str]:
        return [e["message_id"] for e in self.body.get("events", [])]


@dataclass
class FaultProxy:
    upstream: str
    script: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def sent_ids(self) -> list[str]:
        """Every message id the client sent, once per request that carried it."""
        return [m for s in self.seen for m in s.message_ids]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with httpx.AsyncClient(base_url=self.upstream, timeout=10) as upstream:
            try:
                while await self._one(reader, writer, upstream):
                    pass
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: httpx.AsyncClient
    ) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        if not head:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        text = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        action = self.script.pop(0) if self.script else "forward"
        self.seen.append(Seen(time.monotonic(), action, headers, len(text), json.loads(text) if text else {}))
        if action == "503":
            await _reply(writer, 503, {"error": {"code": "QUEUE_UNAVAILABLE", "message": "injected", "details": None}})
            return True
        if action == "400":
            await _reply(writer, 400, {"error": {"code": "VALIDATION_ERROR", "message": "injected", "details": None}})
            return True
        if action.startswith("429:"):
            error = {"error": {"code": "RATE_LIMITED", "message": "injected", "details": None}}
            await _reply(writer, 429, error, {"Retry-After": action[4:]})
            return True
        forwarded = {k: v for k, v in headers.items() if k in FORWARD_HEADERS}
        resp = await upstream.request(method, path, content=raw, headers=forwarded)
        if action == "lose":
            return False  # the edge has the batch; the connection closes with no answer
        await _reply(writer, resp.status_code, resp.content, {"Retry-After": resp.headers.get("retry-after", "")})
        return True


async def _reply(writer: asyncio.StreamWriter, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    head += [f"{k}: {v}" for k, v in (extra or {}).items() if v]
    writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + data)
    await writer.drain()


@contextlib.asynccontextmanager
async def fault_proxy(upstream: str, script: list[str] | None = None) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(upstream, list(script or []))
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
