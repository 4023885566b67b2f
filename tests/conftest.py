"""Real servers for the whole suite.

With DATABASE_URL / REDIS_URL set, tests use those servers (in a database and under a Redis key prefix
of their own, removed afterwards); without them, an embedded Postgres and Valkey are started for the
session and stopped at its end. Tests that stop a server start their own (see `own_valkey`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from redis.asyncio import Redis

from eventplane import apikeys, db, instances, servers, tenants
from eventplane.instances import Instance
from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from ingest.app import create_app
from workers.main import build_worker

# Test servers keep an idle connection longer than httpx's 5 s keepalive_expiry, so a client always drops
# an idle connection before the server closes it: with both at 5 s, a request sent on a connection at the
# moment the server closed it failed with httpx.ReadError (seen once in a fresh-clone run).
KEEP_ALIVE = 30


# `make test` runs the suite in several processes (pytest-xdist, --dist loadgroup), each with servers,
# a database and a Redis prefix of its own (the session fixtures below). A module's tests stay in one
# process, so its module fixtures are made once and its tests run in their order; the modules that load
# every core on purpose (LOAD_MODULES) share one group, so they run one after another, never side by side;
# they are the longest group, so they go first.
LOAD_MODULES = frozenset({
    "tests/faults/test_faults.py",
    "tests/instances/test_two_instances.py",
    "tests/loadtests/test_bench_smoke.py",
})  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group("load" if _module(item) in LOAD_MODULES else _module(item)))
    items.sort(key=lambda item: _module(item) not in LOAD_MODULES)  # stable: the order within each stays


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def server_root(name: str) -> Iterator[Path]:
    """A folder for embedded servers' data, outside pytest's temporary folders.

    The embedded Postgres runs as another user and needs to traverse to its data; pytest resets its own
    root (/tmp/pytest-of-USER) to mode 0700 whenever another pytest session starts on the machine, which
    would cut a running Postgres off its files mid-run.
    """
    root = Path(tempfile.mkdtemp(prefix=f"eventplane-{name}-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    with server_root("servers") as data_dir:
        yield from _server_urls(data_dir)


def _server_urls(data_dir: Path) -> Iterator[tuple[str, str]]:
    database_url = os.environ.get("DATABASE_URL") or ""
    redis_url = os.environ.get("REDIS_URL") or ""
    started: list[str] = []
    if not database_url:
        database_url, _ = servers.ensure_postgres(data_dir / "postgres")
        started.append("postgres")
    if not redis_url:
        redis_url, _ = servers.ensure_valkey(data_dir / "valkey")
        started.append("valkey")
    yield database_url, redis_url
    servers.stop(data_dir, tuple(started))


@pytest_asyncio.fixture(scope="session")
async def settings(server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    server_db, redis_url = server_urls
    name = f"eventplane_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_db)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_database(server_db, name)
    await db.migrate(dsn)
    prefix = f"eptest:{uuid.uuid4().hex[:8]}:"
    yield Settings(
        database_url=dsn,
        redis_url=redis_url,
        redis_prefix=prefix,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        worker_poll_delay=0.0,
        worker_metrics_port=0,
    )
    redis = connect_redis(redis_url)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


@pytest_asyncio.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(settings.dsn, min_size=1, max_size=5)
    yield p
    await db.close_pool(p)


@pytest_asyncio.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = connect_redis(settings.redis_dsn)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def keys(settings: Settings) -> RedisNames:
    return apikeys.redis_keys(settings)


class Tenant:
    """A workspace with one key, made for one test."""

    def __init__(self, workspace: dict[str, Any], key: str, key_id: str) -> None:
        self.workspace_id: str = workspace["id"]
        self.slug: str = workspace["slug"]
        self.key = key
        self.key_id = key_id

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key, "Content-Type": "application/json"}


async def make_tenant(pool: asyncpg.Pool, scopes: list[str] | None = None) -> Tenant:
    slug = f"t-{uuid.uuid4().hex[:12]}"
    workspace = await tenants.create_workspace(pool, name=slug, slug=slug)
    record, key = await tenants.create_api_key(
        pool, workspace_id=workspace["id"], name="test", scope_names=scopes or ["write"]
    )
    return Tenant(workspace, key, record["id"])


@pytest_asyncio.fixture
async def tenant(pool: asyncpg.Pool) -> Tenant:
    return await make_tenant(pool)


@contextlib.asynccontextmanager
async def running_edge(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real edge app on a real socket (uvicorn, in this event loop), and a client for it."""
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, lifespan="on", log_level="warning", timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client
    server.should_exit = True
    await task
    sock.close()


@pytest_asyncio.fixture(scope="session")
async def edge(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_edge(settings) as client:
        yield client


async def drain(settings: Settings) -> None:
    """Run a worker in burst mode until the queue is empty."""
    worker = build_worker(settings, burst=True, poll_delay=0, handle_signals=False, cron_jobs=[])
    try:
        await worker.main()
    finally:
        await worker.close()


@pytest.fixture
def fresh(settings: Settings) -> Settings:
    """Settings with a queue of this test's own (for tests that count jobs or break things)."""
    return replace(settings, redis_prefix=f"{settings.redis_prefix}{uuid.uuid4().hex[:6]}:")


@contextlib.contextmanager
def own_valkey(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Valkey of this test's own, which it may stop; never the shared or system server."""
    data = tmp_path / "valkey"
    url, _ = servers.ensure_valkey(data)
    try:
        yield url, data
    finally:
        servers.stop_valkey(data)


@contextlib.asynccontextmanager
async def registered_instance(settings: Settings, name: str) -> AsyncIterator[Instance]:
    """An instance of this test's own: a database of its own on the suite's Postgres, and Redis database 1
    of the suite's Redis under the suite's prefix. Removed afterwards with the workspaces placed on it, so
    that later tests' workspaces are placed on the default instance again."""
    admin = await asyncpg.connect(settings.dsn)
    database = f"{urlsplit(settings.dsn).path.lstrip('/')}_{name}"[:63]
    await admin.execute(f'CREATE DATABASE "{database}"')
    redis_url = urlunsplit(urlsplit(settings.redis_dsn)._replace(path="/1"))
    try:
        instance = await instances.add(admin, name, _with_database(settings.dsn, database), redis_url)
        yield instance
    finally:
        await admin.execute("DELETE FROM workspaces WHERE instance = $1", name)
        await admin.execute("DELETE FROM instances WHERE name = $1", name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        redis = connect_redis(redis_url)
        stale = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*")]
        if stale:
            await redis.delete(*stale)
        await redis.aclose()
