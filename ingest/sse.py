"""`GET /api/v1/sdk/config/stream`: server-sent events carrying a workspace's config document.

`event: config` with the whole document on connect and after each change (pushed by the config channel,
so a change reaches a connected SDK within about a Redis round trip and a Postgres read), a comment line
every `sse_heartbeat` seconds so proxies keep the connection, a bound per workspace and per edge, and an
end as soon as the edge begins to stop (uvicorn waits for open responses before it stops the app).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any

from eventplane.errors import ApiError
from ingest.asgi import Receive, Send
from ingest.configcache import Cached, ConfigCache

log = logging.getLogger("eventplane.ingest.sse")
RETRY_MS = 2000  # what an EventSource waits before reconnecting
UNSUBSCRIBED_POLL = 1.0  # seconds between looks at the config while the edge hears no changes
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]


def event(cached: Cached) -> bytes:
    # The document is one line of JSON (newlines inside strings are escaped), so one data: line holds it.
    return b"event: config\nid: %d\ndata: %s\n\n" % (cached.version, cached.config.body)


class Streams:
    def __init__(self, cache: ConfigCache, *, per_workspace: int, total: int, heartbeat: float) -> None:
        self._cache = cache
        self._per_workspace = per_workspace
        self._total = total
        self._heartbeat = heartbeat
        self._open: Counter[str] = Counter()
        self._closing = asyncio.Event()
        self.pushed = 0

    @property
    def open(self) -> int:
        return self._open.total()

    def close_all(self) -> None:
        """End every stream now and refuse new ones (the edge is stopping)."""
        self._closing.set()

    def _admit(self, workspace_id: str) -> None:
        if self._closing.is_set():
            raise ApiError(503, "SHUTTING_DOWN", "This edge is stopping; reconnect", None, {"retry-after": "1"})
        if self._open[workspace_id] >= self._per_workspace:
            raise ApiError(
                429, "TOO_MANY_STREAMS",
                f"This workspace has {self._per_workspace} config streams open at this edge; close one or poll "
                "GET /api/v1/sdk/config with If-None-Match", {"limit": self._per_workspace}, {"retry-after": "30"},
            )  # fmt: skip
        if self.open >= self._total:
            raise ApiError(
                429, "TOO_MANY_STREAMS", "This edge holds as many config streams as it may; retry later",
                {"limit": self._total}, {"retry-after": "30"},
            )  # fmt: skip

    async def serve(self, workspace_id: str, receive: Receive, send: Send, request_id: str) -> None:
        """Admit (or raise ApiError before any byte is sent), then stream until the client leaves or the
        edge stops."""
        self._admit(workspace_id)
        self._open[workspace_id] += 1
        try:
            with self._cache.watch(workspace_id) as watcher:
                cached = await self._cache.get(workspace_id)  # after watch(): a change from now on is seen
                headers = [*HEADERS, (b"x-request-id", request_id.encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": b"retry: %d\n\n" % RETRY_MS, "more_body": True})
                await self._push(send, cached)
                await self._follow(workspace_id, watcher.changed, cached.version, receive, send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._open[workspace_id] -= 1
            if self._open[workspace_id] <= 0:
                del self._open[workspace_id]

    async def _push(self, send: Send, cached: Cached) -> None:
        await send({"type": "http.response.body", "body": event(cached), "more_body": True})
        self.pushed += 1

    async def _follow(
        self, workspace_id: str, changed: asyncio.Event, version: int, receive: Receive, send: Send
    ) -> None:
        gone = asyncio.ensure_future(_disconnected(receive))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while True:
                wake = asyncio.ensure_future(changed.wait())
                # Without the config channel no change is announced: look every second instead.
                timeout = self._heartbeat if self._cache.live else min(self._heartbeat, UNSUBSCRIBED_POLL)
                done, _ = await asyncio.wait(
                    {wake, gone, closing}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                wake.cancel()
                if gone in done or closing in done:
                    return
                if wake not in done and self._cache.live:
                    await send({"type": "http.response.body", "body": b": heartbeat\n\n", "more_body": True})
                    continue
                changed.clear()
                try:
                    cached = await self._cache.get(workspace_id)
                except ApiError:
                    log.warning("config stream: the new config cannot be read yet; retrying at the next heartbeat")
                    asyncio.get_running_loop().call_later(self._heartbeat, changed.set)
                    continue
                if cached.version != version:
                    version = cached.version
                    await self._push(send, cached)
                elif wake not in done:
                    await send({"type": "http.response.body", "body": b": heartbeat\n\n", "more_body": True})
        finally:
            for future in (gone, closing):
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await future


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def close_on_signals(streams: Streams) -> Callable[[], None]:
    """End the streams as soon as SIGTERM or SIGINT arrives. uvicorn, on either, waits for every open
    response (up to its graceful timeout) before it stops the app, and nothing tells the app meanwhile:
    so the edge chains its own step before uvicorn's handler. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    chained: list[tuple[signal.Signals, Callable[[int, FrameType | None], Any], Callable[..., Any]]] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous) -> None:
            loop.call_soon_threadsafe(streams.close_all)
            previous(signum, frame)

        signal.signal(sig, handler)
        chained.append((sig, previous, handler))

    def undo() -> None:
        for sig, previous, handler in chained:
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return undo
