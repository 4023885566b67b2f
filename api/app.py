"""The management API's Starlette app: the lifespan that owns the pools, and the route table."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from importlib import metadata
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from api import (
    account_mail,
    accounts,
    api_keys,
    audit,
    errors,
    events,
    experiments,
    flags,
    invitations,
    live,
    members,
    openapi,
    org_invitations,
    org_tokens,
    org_workspaces,
    orgs,
    results,
    security,
    usage,
    user_sessions,
    web,
    workspace_config,
    workspaces,
)
from api.logs import redact_access_log
from api.metrics import ApiMetrics
from api.passwords import Passwords
from api.routing import Endpoint, routes
from api.state import Services
from eventplane import apikeys, db, metrics_access, secretfile, servers
from eventplane.body_deadline import BodyDeadline
from eventplane.redis_client import connect_redis
from eventplane.settings import Settings

log = logging.getLogger("eventplane.api")
ENDPOINTS: list[Endpoint] = [
    *accounts.ENDPOINTS,
    *account_mail.ENDPOINTS,
    *user_sessions.ENDPOINTS,
    *workspaces.ENDPOINTS,
    *members.ENDPOINTS,
    *invitations.ENDPOINTS,
    *api_keys.ENDPOINTS,
    *usage.ENDPOINTS,
    *events.ENDPOINTS,
    *live.ENDPOINTS,
    *flags.ENDPOINTS,
    *experiments.ENDPOINTS,
    *results.ENDPOINTS,
    *audit.ENDPOINTS,
    *orgs.ENDPOINTS,
    *org_invitations.ENDPOINTS,
    *org_tokens.ENDPOINTS,
    *org_workspaces.ENDPOINTS,
    *workspace_config.ENDPOINTS,
]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc: Services = request.app.state.services
    checks = {"redis": False, "postgres": False}
    with contextlib.suppress(Exception):
        checks["redis"] = bool(await svc.redis.ping())
    with contextlib.suppress(Exception):
        checks["postgres"] = await svc.pool.fetchval("SELECT true", timeout=2) is True
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def _version() -> str:
    try:
        return metadata.version("eventplane")
    except metadata.PackageNotFoundError:
        return "0"


OPENAPI = openapi.document(ENDPOINTS, _version())


async def openapi_json(request: Request) -> Response:
    return JSONResponse(OPENAPI)


class Api(Starlette):
    """Starlette with the security headers and CORS outside its ServerErrorMiddleware (where middleware
    passed to Starlette would sit), so that a 500 carries them too."""

    def __init__(self, settings: Settings, api_metrics: ApiMetrics | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.security_settings = settings
        self.api_metrics = api_metrics or ApiMetrics()

    def build_middleware_stack(self) -> ASGIApp:
        inner = BodyDeadline(super().build_middleware_stack(), self.security_settings.body_timeout)
        return security.wrap(self.api_metrics.wrap(inner), self.security_settings)


def create_app(settings: Settings | None = None) -> Starlette:
    configured = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resolved = settings or servers.resolve(configured).settings
        if resolved.jwt_secret is None:
            resolved = replace(resolved, jwt_secret=secretfile.stored_secret(resolved.data_dir / "jwt_secret"))
        pool = await db.create_pool(resolved.dsn, min_size=1, max_size=10)
        redis = connect_redis(resolved.redis_dsn)
        app.state.settings = resolved
        passwords = Passwords(resolved)
        app.state.services = Services(resolved, pool, redis, apikeys.redis_keys(resolved), passwords)
        try:
            yield
        finally:
            passwords.close()
            await db.close_pool(pool)
            await redis.aclose()

    redact_access_log()
    api_metrics = ApiMetrics()
    table = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/openapi.json", openapi_json)]
    table += [Route("/metrics", metrics_access.guard(api_metrics.endpoint, configured.metrics_token))]
    table += routes(ENDPOINTS)
    table += web.Dashboard(configured).routes()
    return Api(configured, api_metrics, routes=table, lifespan=lifespan, exception_handlers=errors.HANDLERS)


app = create_app()
