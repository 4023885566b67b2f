"""How both HTTP servers (edge and api) are run by uvicorn: which peers' proxy headers are believed, and
how long a client may take to send a request's headers.

uvicorn bounds neither: it trusts X-Forwarded-For from 127.0.0.1 by default, and a connection that
trickles header bytes (or sends none) stays open for as long as the client likes. The protocol below
records when a connection starts waiting for a request's headers; one sweep per server (not a timer
per request: the edge's hot path) answers 408 and closes those that overran EVENTPLANE_HEADER_TIMEOUT.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from eventplane.errors import ApiError
from eventplane.settings import Settings


def config(app: Any, settings: Settings, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """A uvicorn config for `app` (an ASGI app or an import string) with the house's protections."""
    trusted = list(settings.trusted_proxies)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=header_deadline_protocol(settings.header_timeout),
        proxy_headers=bool(trusted),  # off: the peer's address is the client's, whatever headers say
        forwarded_allow_ips=trusted or None,
        **options,
    )


def header_deadline_protocol(seconds: float) -> type[HttpToolsProtocol]:
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})


def _timeout_response(seconds: float) -> bytes:
    body = ApiError(408, "REQUEST_TIMEOUT", f"The request headers did not arrive within {seconds:g} s").body()
    head = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    _waiting_since: float | None = None  # loop time since when this connection awaits a request's headers

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting_since = self.loop.time()
        _Sweeper.ensure(self)

    def data_received(self, data: bytes) -> None:
        if self._waiting_since is None and (self.cycle is None or self.cycle.response_complete):
            self._waiting_since = self.loop.time()  # the first bytes of the next request on this connection
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._waiting_since = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting_since = None
        super().connection_lost(exc)

    def overran(self, now: float) -> bool:
        return self._waiting_since is not None and now - self._waiting_since > self.header_timeout

    def expire(self) -> None:
        self._waiting_since = None
        if not self.transport.is_closing():
            self.transport.write(_timeout_response(self.header_timeout))
            self.transport.close()


class _Sweeper:
    """One task per server that checks its connections a few times per header_timeout; it ends when the
    server has no connections left and starts again with the next one."""

    _running: dict[int, asyncio.Task[None]] = {}

    @classmethod
    def ensure(cls, protocol: HeaderDeadlineProtocol) -> None:
        connections: set[Any] = protocol.connections
        if id(connections) not in cls._running:
            task = protocol.loop.create_task(cls._sweep(protocol.loop, connections, protocol.header_timeout))
            cls._running[id(connections)] = task
            task.add_done_callback(lambda _: cls._running.pop(id(connections), None))

    @staticmethod
    async def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], limit: float) -> None:
        while connections:
            await asyncio.sleep(min(1.0, limit / 4))
            now = loop.time()
            for protocol in list(connections):
                if isinstance(protocol, HeaderDeadlineProtocol) and protocol.overran(now):
                    protocol.expire()
