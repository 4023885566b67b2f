"""The HTTP ceiling: a raw ASGI app that reads the body and answers 202, doing nothing else.

Run as the edge is (`uvicorn loadtests.noop:app --loop uvloop --http httptools`), so `edge_single / noop`
is the share of the machine's HTTP capacity the edge keeps for itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
BODY = b'{"accepted":1}'
START = {
    "type": "http.response.start",
    "status": 202,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(START)
    await send({"type": "http.response.body", "body": BODY})
