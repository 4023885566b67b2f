"""A deadline for a request's whole body, as pure ASGI middleware (the api's; the edge has its own sweep
on its hot path, ingest/body.py). Past it, the handler's read raises 408 REQUEST_TIMEOUT."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from eventplane.errors import ApiError

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class BodyDeadline:
    def __init__(self, app: App, within: float) -> None:
        self.app = app
        self.within = within

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.within
        complete = expired = False

        async def bounded() -> Message:
            nonlocal complete, expired
            if complete:  # after the body, receive() waits for a disconnect: not ours to bound
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                expired = True
                raise ApiError(408, "REQUEST_TIMEOUT", f"The body did not arrive within {self.within:g} s") from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def closing(message: Message) -> None:
            if expired and message["type"] == "http.response.start":  # the rest of the body is not waited for
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, bounded, closing)
