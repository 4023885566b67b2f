"""An endpoint declared once: Starlette routes it, /openapi.json documents it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]
Auth = Literal["none", "session", "session_or_key"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: Any = None  # a wire.Input type
    response: Any = None  # a wire type; None for 204
    status: int = 200
    auth: Auth = "session"
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()

    def route(self) -> Route:
        return Route(self.path, self.handler, methods=[self.method])
