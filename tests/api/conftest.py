"""The management API in process (httpx over ASGI, lifespan run for real) against the suite's real
Postgres and Redis, plus helpers that make users, workspaces and members through the API itself."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette

from api.app import create_app
from api.state import Services
from eventplane import tenants
from eventplane.settings import Secret, Settings
from tests.conftest import KEEP_ALIVE

PASSWORD = "correct horse battery staple"


@pytest_asyncio.fixture(scope="session")
async def api_settings(settings: Settings) -> Settings:
    # Cheap argon2 parameters keep a suite of hundreds of sign-ups fast; production uses the defaults.
    # A test's client signs up many users from one address: the per-address sign-up limit is tested on its own.
    # Webhook receivers of the tests listen on 127.0.0.1: internal destinations are allowed (the default,
    # refusing them, is tested with an app of its own in test_workspace_config.py).
    return replace(settings, jwt_secret=Secret(secrets.token_urlsafe(48)), password_time_cost=1,
                   password_memory_kib=8 * 1024, signup_limit_per_ip=100_000,
                   webhook_allow_private=True)  # fmt: skip


@pytest_asyncio.fixture(scope="session")
async def api_app(api_settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(api_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
def live_api(api_settings: Settings) -> Iterator[str]:
    """The real api app under uvicorn on a real socket, in a thread with an event loop of its own (so that
    synchronous clients such as schemathesis can call it); yields its base URL. Uvicorn's access log is on
    and left to propagate (log_config=None), so tests can capture it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Every client of this server comes from 127.0.0.1, so the per-address login limit would be shared by all.
    app = create_app(replace(api_settings, login_limit_per_ip=100_000))
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, access_log=True, timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the api server failed to start"
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


class ApiClient(httpx.AsyncClient):
    """A client of the in-process app, which it keeps: helpers act as the operator through its services."""

    def __init__(self, app: Starlette, ip: str) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://api.test")
        self.app = app


def client_for(app: Starlette, ip: str | None = None) -> ApiClient:
    """A client for the in-process app; each gets its own source address (login limits count per IP)."""
    return ApiClient(app, ip or f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}")


async def set_plan(api: httpx.AsyncClient, slug: str, plan: str) -> None:
    """What the operator's `eventplane workspace set-plan` does, through the api's own pool and Redis."""
    assert isinstance(api, ApiClient), "plans are set through the in-process app's services"
    svc: Services = api.app.state.services
    assert await tenants.set_plan(svc.pool, svc.redis, svc.keys, slug, plan) is not None


@pytest_asyncio.fixture
async def api(api_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(api_app) as client:
        yield client


@dataclass
class Account:
    id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.test"


def unique_slug(tag: str = "ws") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}"


async def new_account(api: httpx.AsyncClient, email: str | None = None, name: str = "Test User") -> Account:
    email = email or unique_email()
    r = await api.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD, "name": name})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    r = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    tokens = r.json()
    return Account(user_id, email, tokens["access_token"], tokens["refresh_token"])


async def new_workspace(api: httpx.AsyncClient, owner: Account, plan: str = "free", **fields: Any) -> dict[str, Any]:
    """A workspace `owner` creates (on the default plan, as any user may), then given `plan` by the operator."""
    slug = unique_slug()
    r = await api.post("/api/v1/workspaces", json={"name": slug, "slug": slug, **fields}, headers=owner.headers)
    assert r.status_code == 201, r.text
    if plan != "free":
        await set_plan(api, slug, plan)
        r = await api.get(f"/api/v1/workspaces/{r.json()['id']}", headers=owner.headers)
    workspace: dict[str, Any] = r.json()
    return workspace


async def add_member(api: httpx.AsyncClient, owner: Account, workspace_id: str, user: Account, role: str) -> str:
    """Makes `user` a member with `role` the way a stranger joins: invited by `owner`, then accepting.
    Returns the member id."""
    r = await api.post(f"/api/v1/workspaces/{workspace_id}/invites", json={"email": user.email, "role": role},
                       headers=owner.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    r = await api.post(f"/api/v1/workspaces/invites/{r.json()['token']}/accept", headers=user.headers)
    assert r.status_code == 200, r.text
    member_id: str = r.json()["member"]["id"]
    return member_id


@dataclass
class Team:
    """A workspace with one member of each role."""

    workspace_id: str
    owner: Account
    admin: Account
    developer: Account
    viewer: Account
    member_ids: dict[str, str]

    def by_role(self, role: str) -> Account:
        account: Account = getattr(self, role.lower())
        return account


async def new_team(api: httpx.AsyncClient, plan: str = "pro") -> Team:
    owner = await new_account(api)
    workspace = await new_workspace(api, owner, plan=plan)
    wid = workspace["id"]
    accounts = {role: await new_account(api) for role in ("ADMIN", "DEVELOPER", "VIEWER")}
    ids = {role: await add_member(api, owner, wid, account, role) for role, account in accounts.items()}
    r = await api.get(f"/api/v1/workspaces/{wid}/members", headers=owner.headers)
    ids["OWNER"] = next(m["id"] for m in r.json()["items"] if m["role"] == "OWNER")
    return Team(wid, owner, accounts["ADMIN"], accounts["DEVELOPER"], accounts["VIEWER"], ids)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    code: str = body["error"]["code"]
    return code


async def demoted_while_waiting(pool: asyncpg.Pool, team: Team, request: Awaitable[httpx.Response]) -> httpx.Response:
    """Send `request` (by the team's ADMIN) while the test holds the workspace's lock; once the request waits
    for it, demote the ADMIN to VIEWER and let go: the answer shows whether the role was read again under the
    lock (the race a concurrent demotion makes)."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE", uuid.UUID(team.workspace_id))
        task = asyncio.ensure_future(request)
        deadline = time.monotonic() + 10
        while not await conn.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ):
            assert not task.done(), task.result().text
            assert time.monotonic() < deadline, "the request never waited for the workspace lock"
            await asyncio.sleep(0.005)
        await conn.execute("UPDATE workspace_members SET role = 'VIEWER' WHERE id = $1",
                           uuid.UUID(team.member_ids["ADMIN"]))  # fmt: skip
        await tx.commit()
    return await task
