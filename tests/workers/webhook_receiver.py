"""A real HTTP receiver for webhook tests (uvicorn + Starlette on a socket), which checks every signature."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import KEEP_ALIVE

TOLERANCE = 300  # seconds a signature's timestamp may be off, as a receiver would check


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """What a customer's receiver does: parse t= and v1=, recompute, compare in constant time."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if "t" not in parts or "v1" not in parts or abs((now or time.time()) - int(parts["t"])) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class Receiver:
    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.batches: list[dict[str, Any]] = []
        self.attempt_times: list[float] = []
        self.bad_signatures = 0
        self.fail_next = 0  # answer 500 to this many requests
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def message_ids(self) -> list[str]:
        return [e["message_id"] for b in self.batches for e in b["events"]]

    async def _hook(self, request: Request) -> Response:
        self.attempt_times.append(time.monotonic())
        body = await request.body()
        if not verify(self.secret, request.headers.get("eventplane-signature", ""), body):
            self.bad_signatures += 1
            return Response(status_code=400)
        if self.fail_next > 0:
            self.fail_next -= 1
            return Response(status_code=500)
        self.batches.append(json.loads(body))
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def serving(self, port: int = 0) -> AsyncIterator[Receiver]:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_keep_alive=KEEP_ALIVE))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            await task
            sock.close()
