"""The management API's Starlette app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventplane import db, servers
from eventplane.redis_client import connect_redis
from eventplane.settings import Settings


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = {"redis": False, "postgres": False}
    with contextlib.suppress(Exception):
        checks["redis"] = bool(await request.app.state.redis.ping())
    with contextlib.suppress(Exception):
        checks["postgres"] = await request.app.state.pool.fetchval("SELECT true", timeout=2) is True
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def create_app(settings: Settings | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resolved = settings or servers.resolve(Settings.from_env()).settings
        app.state.settings = resolved
        app.state.pool = await db.create_pool(resolved.dsn, min_size=1, max_size=10)
        app.state.redis = connect_redis(resolved.redis_dsn)
        try:
            yield
        finally:
            await app.state.pool.close()
            await app.state.redis.aclose()

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)], lifespan=lifespan)


app = create_app()
