"""The few ASGI helpers the hot path needs, without Request/Response objects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = (b"content-type", b"application/json")


WANTED = frozenset(
    {
        b"x-api-key",
        b"authorization",
        b"content-length",
        b"content-type",
        b"content-encoding",
        b"x-request-id",
        b"origin",
    }
)
Headers = dict[bytes, bytes]


def headers_of(scope: Scope) -> Headers:
    """The request headers the edge reads, in one pass (names arrive lower-cased from the server)."""
    return {key: value for key, value in scope["headers"] if key in WANTED}


async def respond(send: Send, status: int, body: bytes, request_id: str, extra: dict[str, str] | None = None) -> None:
    raw = [JSON, (b"content-length", b"%d" % len(body)), (b"x-request-id", request_id.encode())]
    if extra:
        raw += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
