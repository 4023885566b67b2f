"""A real worker process (`eventplane worker`) whose Redis restarts under it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
import pytest
from redis.asyncio import Redis

from eventplane import queue, servers
from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, own_valkey
from tests.workers.test_store import row
from workers.state import application_name

RESTARTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def worker_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with own_valkey(tmp_path) as own:
        yield own


async def _stored(metrics: httpx.AsyncClient) -> float:
    try:
        text = (await metrics.get("/metrics")).text
    except httpx.TransportError:
        return -1.0
    found = re.search(r"^eventplane_worker_events_stored_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


async def _wait_rows(pool: asyncpg.Pool, tenant: Tenant, expected: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    query = "SELECT count(*) FROM events WHERE workspace_id = $1"
    while (seen := await pool.fetchval(query, tenant.workspace_id)) != expected:
        assert proc.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"{seen} events stored, not {expected}"
        await asyncio.sleep(0.05)


def _spawn(module_args: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", *module_args], env=env, stdout=log, stderr=subprocess.STDOUT)


def _postgres_connections(pid: int, pg_port: int) -> int:
    """The worker's open TCP connections to Postgres, seen from its side."""
    conns = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.raddr and c.raddr.port == pg_port and c.status == psutil.CONN_ESTABLISHED)


async def test_a_worker_keeps_one_set_of_pools_and_its_metrics_across_redis_restarts(
    settings: Settings, tenant: Tenant, pool: asyncpg.Pool, worker_redis: tuple[str, Path], tmp_path: Path
) -> None:
    redis_url, redis_data = worker_redis
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": redis_url, "EVENTPLANE_REDIS_PREFIX": "ep:",
           "EVENTPLANE_WORKER_METRICS_PORT": str(port), "EVENTPLANE_WORKER_POLL_DELAY": "0.02",
           "EVENTPLANE_LOG_FORMAT": "text"}  # fmt: skip
    log = (tmp_path / "worker.log").open("wb")
    proc = _spawn(["eventplane.cli", "worker"], env, log)
    pg_port = urlsplit(settings.dsn).port or 5432
    keys = RedisNames("ep:")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as metrics:
            for restart in range(RESTARTS + 1):
                redis: Redis = connect_redis(redis_url)
                try:
                    await queue.enqueue(redis, keys, [([row(tenant, f"r{restart}-{i}") for i in range(5)], [])])
                finally:
                    await redis.aclose()
                await _wait_rows(pool, tenant, 5 * (restart + 1), proc)
                if restart < RESTARTS:
                    servers.stop_valkey(redis_data)
                    servers.ensure_valkey(redis_data)
            assert await _stored(metrics) == 5.0 * (RESTARTS + 1)  # one registry, served live throughout
        # Two pools (maintenance: at most 2, the batch writer's: at most flush concurrency), opened once.
        bound = 2 + settings.worker_flush_concurrency
        if urlsplit(settings.dsn).hostname:  # over TCP (the embedded Postgres listens on a Unix socket only,
            # whose client ends name no peer): count from the worker's side too, whatever their names
            assert 1 <= _postgres_connections(proc.pid, pg_port) <= bound
        named = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        assert 1 <= await pool.fetchval(named, application_name(proc.pid)) <= bound
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


async def test_sigterm_stops_a_worker_waiting_to_reconnect(
    settings: Settings, tenant: Tenant, pool: asyncpg.Pool, worker_redis: tuple[str, Path], tmp_path: Path
) -> None:
    redis_url, redis_data = worker_redis
    env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": redis_url, "EVENTPLANE_REDIS_PREFIX": "ep:",
           "EVENTPLANE_WORKER_METRICS_PORT": "0", "EVENTPLANE_WORKER_POLL_DELAY": "0.02",
           "EVENTPLANE_LOG_FORMAT": "text"}  # fmt: skip
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    proc = _spawn(["workers"], env, log)
    try:
        redis: Redis = connect_redis(redis_url)
        try:
            await queue.enqueue(redis, RedisNames("ep:"), [([row(tenant, "before-outage")], [])])
        finally:
            await redis.aclose()
        await _wait_rows(pool, tenant, 1, proc)
        servers.stop_valkey(redis_data)
        # The second wait (2 s, after a worker that could not connect at all) leaves time to signal within it.
        deadline = time.monotonic() + 30
        while b"starting the worker again in 2 s" not in log_path.read_bytes():
            assert time.monotonic() < deadline, "the worker did not try to start again"
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # while it waits to start again
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def _postgres_upstream(dsn: str) -> tuple[str, int] | str:
    """Where the suite's Postgres listens: (host, port), or the path of its Unix socket (embedded)."""
    parts = urlsplit(dsn)
    if parts.hostname:
        return parts.hostname, parts.port or 5432
    [directory] = [v.split("=", 1)[1] for v in parts.query.split("&") if v.startswith("host=")]
    [path] = [p for p in Path(directory).glob(".s.PGSQL.*") if not p.name.endswith(".lock")]
    return str(path)


async def test_a_worker_started_while_postgres_is_unreachable_waits_for_it(
    settings: Settings, tenant: Tenant, pool: asyncpg.Pool, worker_redis: tuple[str, Path], tmp_path: Path
) -> None:
    """Its Postgres is a port nobody listens on until a forwarder to the suite's server opens there: the
    worker keeps trying (it used to exit at once) and stores what was queued once it can."""
    redis_url, _ = worker_redis
    port = _free_port()
    dsn = f"postgresql://postgres@127.0.0.1:{port}/{urlsplit(settings.dsn).path.lstrip('/')}"
    env = {**os.environ, "DATABASE_URL": dsn, "REDIS_URL": redis_url, "EVENTPLANE_REDIS_PREFIX": "ep:",
           "EVENTPLANE_WORKER_METRICS_PORT": "0", "EVENTPLANE_WORKER_POLL_DELAY": "0.02",
           "EVENTPLANE_LOG_FORMAT": "text"}  # fmt: skip
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    proc = _spawn(["workers"], env, log)
    upstream = _postgres_upstream(settings.dsn)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if isinstance(upstream, str):
            up_reader, up_writer = await asyncio.open_unix_connection(upstream)
        else:
            up_reader, up_writer = await asyncio.open_connection(*upstream)
        await asyncio.gather(_forward(reader, up_writer), _forward(up_reader, writer))

    forwarder: asyncio.Server | None = None
    try:
        redis: Redis = connect_redis(redis_url)
        try:
            await queue.enqueue(redis, RedisNames("ep:"), [([row(tenant, "queued-in-outage")], [])])
        finally:
            await redis.aclose()
        deadline = time.monotonic() + 30
        while b"cannot reach Postgres" not in log_path.read_bytes():
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the worker never tried Postgres"
            await asyncio.sleep(0.02)
        forwarder = await asyncio.start_server(relay, "127.0.0.1", port)
        await _wait_rows(pool, tenant, 1, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 30)
            finally:
                if proc.poll() is None:
                    proc.kill()
        log.close()
        if forwarder is not None:
            forwarder.close()
