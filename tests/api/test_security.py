"""Security headers on every response (500s included), HSTS only behind HTTPS, and CORS for the configured
dashboard origins only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import errors
from api.app import Api, create_app
from api.security import CSP
from eventplane.settings import Settings
from tests.api.conftest import client_for, new_account

DASHBOARD = "https://dashboard.example.com"
ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": CSP,
}


def assert_secure(response: httpx.Response, private: bool = True) -> None:
    for name, value in ALWAYS.items():
        assert response.headers.get(name) == value, (name, response.status_code, response.headers)
    assert response.headers.get("cache-control") == ("no-store" if private else None)


@pytest_asyncio.fixture(scope="module")
async def dashboard_app(api_settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(replace(api_settings, dashboard_origins=(DASHBOARD,), behind_https=True))
    async with app.router.lifespan_context(app):
        yield app


async def test_every_kind_of_response_carries_the_headers(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    responses = [
        await api.get("/api/v1/me", headers=account.headers),  # 200, authenticated
        await api.get("/api/v1/me"),  # 401
        await api.get("/api/v1/nowhere"),  # 404
        await api.delete("/api/v1/auth/login"),  # 405
        await api.post("/api/v1/auth/signup", content=b"{"),  # 400
    ]
    assert [r.status_code for r in responses] == [200, 401, 404, 405, 400]
    for r in responses:
        assert_secure(r)
        assert "strict-transport-security" not in r.headers  # not configured as behind HTTPS
    # The login answer holds tokens: never cached, though the request carried no credentials.
    r = await api.post("/api/v1/auth/login", json={"email": account.email, "password": "wrong password"})
    assert_secure(r)
    assert_secure(await api.get("/healthz"), private=False)
    assert_secure(await api.get("/openapi.json"), private=False)
    assert_secure(await api.get("/healthz", headers=account.headers), private=True)


async def test_a_500_carries_them_too(api_settings: Settings) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = Api(api_settings, routes=[Route("/api/v1/boom", boom)], exception_handlers=errors.HANDLERS)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        r = await client.get("/api/v1/boom")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "INTERNAL_ERROR"
    assert_secure(r)


async def test_hsts_only_behind_https(dashboard_app: Starlette) -> None:
    async with client_for(dashboard_app) as client:
        r = await client.get("/healthz")
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert_secure(r, private=False)


async def test_preflight_works_for_the_dashboard_only(dashboard_app: Starlette) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    async with client_for(dashboard_app) as client:
        ok = await client.options("/api/v1/workspaces", headers={"origin": DASHBOARD, **preflight})
        other = await client.options("/api/v1/workspaces", headers={"origin": "https://evil.example", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == DASHBOARD
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in ok.headers
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert_secure(ok)


async def test_cors_answers_name_the_dashboard_never_a_wildcard(dashboard_app: Starlette) -> None:
    async with client_for(dashboard_app) as client:
        account = await new_account(client)
        ok = await client.get("/api/v1/me", headers={"origin": DASHBOARD, **account.headers})
        other = await client.get("/api/v1/me", headers={"origin": "https://evil.example", **account.headers})
        failed = await client.get("/api/v1/me", headers={"origin": DASHBOARD})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == DASHBOARD
    assert "origin" in ok.headers["vary"].lower()
    assert failed.status_code == 401 and failed.headers["access-control-allow-origin"] == DASHBOARD
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_unless_configured(api: httpx.AsyncClient) -> None:
    r = await api.options("/api/v1/workspaces", headers={"origin": DASHBOARD, "access-control-request-method": "POST"})
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers
    r = await api.get("/healthz", headers={"origin": DASHBOARD})
    assert "access-control-allow-origin" not in r.headers


def test_origins_setting() -> None:
    env = {"EVENTPLANE_DASHBOARD_ORIGINS": f" {DASHBOARD}/ , http://localhost:3000", "EVENTPLANE_BEHIND_HTTPS": "1"}
    settings = Settings.from_env(env)
    assert settings.dashboard_origins == (DASHBOARD, "http://localhost:3000")
    assert settings.behind_https
    assert Settings.from_env({}).dashboard_origins == ()
    assert not Settings.from_env({}).behind_https
    for bad in ("*", f"{DASHBOARD},*", "dashboard.example.com"):
        with pytest.raises(ValueError):
            Settings.from_env({"EVENTPLANE_DASHBOARD_ORIGINS": bad})


def test_the_served_api_sends_no_server_header(settings: Settings, tmp_path: Path) -> None:
    """`eventplane api` itself, over a real socket: no `server: uvicorn` telling scanners what to try."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": settings.redis_dsn,
           "EVENTPLANE_REDIS_PREFIX": settings.redis_prefix, "EVENTPLANE_API_PORT": str(port),
           "EVENTPLANE_DATA_DIR": str(tmp_path)}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "eventplane.cli", "api"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "eventplane api exited"
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "eventplane api did not answer in 30 s"
                time.sleep(0.05)
        assert r.status_code == 200 and "server" not in r.headers
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/nope", timeout=2)
        assert r.status_code == 404 and "server" not in r.headers
    finally:
        server.terminate()
        server.wait(20)
