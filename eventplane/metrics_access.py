"""GET /metrics behind a token (EVENTPLANE_METRICS_TOKEN), for the edge and the api alike."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from eventplane.errors import ApiError
from eventplane.settings import Secret

Endpoint = Callable[[Request], Awaitable[Response]]


def refusal(authorization: str | None, token: Secret | None) -> Response | None:
    """None when metrics may be served: no token is configured, or the request carries it."""
    if token is None:
        return None
    given = (authorization or "").encode("latin-1", "replace")
    if hmac.compare_digest(given, b"Bearer " + token.encode()):
        return None
    error = ApiError(401, "AUTH_ERROR", "GET /metrics needs 'Authorization: Bearer <EVENTPLANE_METRICS_TOKEN>'")
    return Response(error.body(), 401, {"www-authenticate": "Bearer"}, media_type="application/json")


def guard(endpoint: Endpoint, token: Secret | None) -> Endpoint:
    if token is None:
        return endpoint

    async def guarded(request: Request) -> Response:
        refused = refusal(request.headers.get("authorization"), token)
        return refused if refused is not None else await endpoint(request)

    return guarded
