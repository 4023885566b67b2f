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


def routes(endpoints: list[Endpoint]) -> list[Route]:
    """One Route per path, serving every method declared for it: a method the path lacks is then 405 with
    an `Allow` header naming all of the path's methods (one Route per endpoint would name only its own)."""
    by_path: dict[str, dict[str, Handler]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = e.handler
    return [_route(path, handlers) for path, handlers in by_path.items()]


def _route(path: str, handlers: dict[str, Handler]) -> Route:
    if len(handlers) == 1:
        [(method, handler)] = handlers.items()
        return Route(path, handler, methods=[method])

    async def dispatch(request: Request) -> Response:
        # Route adds HEAD beside GET and answers 405 for anything else before calling this.
        handler = handlers["GET" if request.method == "HEAD" else request.method]
        request.scope["endpoint"] = handler  # the metrics label names the handler, not this dispatcher
        return await handler(request)

    # Seen by the metrics only when Route answers 405 itself, without calling the dispatcher.
    dispatch.__module__, dispatch.__qualname__ = "", "method_not_allowed"
    return Route(path, dispatch, methods=list(handlers))
