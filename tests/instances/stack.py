"""Two instances on one machine, as real processes on servers of their own (tests break them).

Postgres 1 holds the hub (database `postgres`) and instance `a` (database `instance_a`); Valkey 1 holds
the hub's Redis (database 0) and instance `a`'s (database 1). Instance `b` has Postgres 2 and Valkey 2
to itself, so stopping them touches `b` alone. Two edges, and one worker per instance.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from eventplane import db, servers, tenants
from tests.faults.stack import free_port

BATCH = "/api/v1/tracking/batch"


def _database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _redis_db(url: str, number: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


class TwoInstances:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"inst:{uuid.uuid4().hex[:6]}:"
        self.edge_ports = [free_port(), free_port()]
        self.hub_db = self.hub_redis = ""
        self.urls: dict[str, tuple[str, str]] = {}  # instance -> (database_url, redis_url)
        self.procs: list[subprocess.Popen[bytes]] = []

    def valkey_dir(self, n: int) -> Path:
        return self.root / f"valkey{n}"

    async def start_servers(self) -> None:
        pg1, _ = servers.ensure_postgres(self.root / "postgres1")
        pg2, _ = servers.ensure_postgres(self.root / "postgres2")
        vk1, _ = servers.ensure_valkey(self.valkey_dir(1))
        vk2, _ = servers.ensure_valkey(self.valkey_dir(2))
        conn = await asyncpg.connect(pg1)
        try:
            await conn.execute("CREATE DATABASE instance_a")
        finally:
            await conn.close()
        self.hub_db, self.hub_redis = pg1, _redis_db(vk1, 0)
        self.urls = {"a": (_database(pg1, "instance_a"), _redis_db(vk1, 1)), "b": (pg2, vk2)}
        await db.migrate(self.hub_db)

    def stop_servers(self) -> None:
        servers.stop_postgres(self.root / "postgres1")
        servers.stop_postgres(self.root / "postgres2")
        servers.stop_valkey(self.valkey_dir(1))
        servers.stop_valkey(self.valkey_dir(2))

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.hub_db,
            "REDIS_URL": self.hub_redis,
            "EVENTPLANE_DATA_DIR": str(self.root / "data"),
            "EVENTPLANE_REDIS_PREFIX": self.prefix,
            "EVENTPLANE_JOB_TIMEOUT": "3",
            "EVENTPLANE_WORKER_POLL_DELAY": "0.02",
            "EVENTPLANE_WORKER_METRICS_PORT": "0",
            "EVENTPLANE_RATE_LIMIT_SCALE": "0",
            "EVENTPLANE_BODY_TIMEOUT": "2",  # edges and moves alike: a move's fence is 2 + 3 + 1 s
            **extra,
        }

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """An `eventplane` command, to the end (deadline 60 s)."""
        return subprocess.run([sys.executable, "-m", "eventplane.cli", *args], env=self.env(), capture_output=True,
                              timeout=60, check=False)  # fmt: skip

    def spawn(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}-{len(self.procs)}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen([sys.executable, "-m", "eventplane.cli", *args], env=self.env(**env), stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        self.procs.append(proc)
        return proc

    async def start(self) -> None:
        """Register both instances (through the CLI), then two edges and a worker per instance."""
        for name, (database_url, redis_url) in self.urls.items():
            done = self.run_cli("instance", "add", name, "--database-url", database_url, "--redis-url", redis_url)
            assert done.returncode == 0, done.stderr.decode()
        for name in self.urls:
            self.spawn(f"worker-{name}", "worker", "--instance", name)
        for port in self.edge_ports:
            self.spawn("edge", "ingest", EVENTPLANE_INGEST_PORT=str(port))
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            for port in self.edge_ports:
                while True:
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, f"edge did not start; see {self.root}\n{self.logs()}"
                    await asyncio.sleep(0.1)

    async def tenant(self, instance: str) -> tuple[str, str, str]:
        """A workspace placed on `instance` and a key: (workspace id, slug, key)."""
        conn = await asyncpg.connect(self.hub_db)
        try:
            slug = f"i-{uuid.uuid4().hex[:10]}"
            workspace = await tenants.create_workspace(conn, name=slug, slug=slug, instance=instance)
            _, key = await tenants.create_api_key(conn, workspace_id=workspace["id"], name="t", scope_names=["write"])
        finally:
            await conn.close()
        return workspace["id"], slug, key

    async def wait_step(self, workspace_id: str, step: str, limit: float = 30) -> None:
        """Until the workspace's move has recorded `step` (at most `limit` seconds)."""
        deadline = time.monotonic() + limit
        conn = await asyncpg.connect(self.hub_db)
        try:
            while await conn.fetchval("SELECT step FROM workspace_moves WHERE workspace_id = $1", workspace_id) != step:
                assert time.monotonic() < deadline, f"the move did not reach {step}\n{self.logs()}"
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.root.glob("*.log")))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()


@dataclass
class Load:
    """What one workspace's client saw: each batch retried (on 503 or a broken connection) until 202."""

    acked: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    answers: list[tuple[float, int]] = field(default_factory=list)  # (when the request was sent, status)

    def between(self, start: float, end: float) -> Counter[int]:
        return Counter(status for sent, status in self.answers if start <= sent <= end)


async def load(ports: list[int], key: str, stop: asyncio.Event, *, batch: int = 20, senders: int = 2,
               pace: float = 0.05) -> Load:  # fmt: skip
    """Send batches of fresh message ids through every edge in turn until `stop`, then finish the batch in
    hand (until its 202)."""
    seen = Load()

    async def sender(n: int, client: httpx.AsyncClient) -> None:
        turn = n
        while not stop.is_set():
            ids = [uuid.uuid4().hex for _ in range(batch)]
            body = {"events": [{"event_type": "i", "user_id": "u", "message_id": m} for m in ids]}
            while True:
                port = ports[turn % len(ports)]
                turn += 1
                sent = time.monotonic()
                try:
                    r = await client.post(f"http://127.0.0.1:{port}{BATCH}", json=body, headers={"X-API-Key": key})
                    status = r.status_code
                except httpx.TransportError:
                    status = 0
                seen.statuses[status] += 1
                seen.answers.append((sent, status))
                if status == 202:
                    seen.acked.update(ids)
                    break
                if status not in (0, 503):
                    return  # an answer no retry changes: the test sees it in `statuses`
                await asyncio.sleep(0.1)
            await asyncio.sleep(pace)

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(sender(n, client) for n in range(senders)))
    return seen


async def stored(database_url: str, workspace_id: str) -> tuple[int, set[str]]:
    """(rows, distinct message ids) of the workspace in this database."""
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        rows = await conn.fetch("SELECT message_id FROM events WHERE workspace_id = $1", workspace_id)
    finally:
        await conn.close()
    return len(rows), {r[0] for r in rows}


async def wait_stored(
    database_url: str, workspace_id: str, expected: set[str], limit: float = 60
) -> tuple[int, set[str]]:
    deadline = time.monotonic() + limit
    while True:
        try:
            rows, ids = await stored(database_url, workspace_id)
        except (OSError, asyncpg.PostgresError):
            rows, ids = -1, set()
        if expected <= ids or time.monotonic() > deadline:
            return rows, ids
        await asyncio.sleep(0.25)
