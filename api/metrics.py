"""Prometheus metrics of the api process: requests by handler and status, and their durations."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "eventplane_api_requests", "Requests by handler, method and status",
            ["handler", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "eventplane_api_request_seconds", "Request durations by handler", ["handler"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return _Middleware(app, self)

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _label(endpoint: object) -> str:
    """`keys.create`, `workspaces.create`: the handler's module (without `api.`) and name."""
    name = getattr(endpoint, "__qualname__", None)
    if name is None:
        return "unmatched"
    module = str(getattr(endpoint, "__module__", "")).removeprefix("api.")
    return f"{module}.{name}" if module else name


class _Middleware:
    """Pure ASGI. The handler label is the matched endpoint's name (Starlette's router writes it into
    the shared scope; a path serving several methods writes the handler it dispatches to), so ids in paths
    never become label values."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            handler = _label(scope.get("endpoint"))
            self.metrics.requests.labels(handler, scope["method"], str(status)).inc()
            self.metrics.seconds.labels(handler).observe(time.perf_counter() - started)
