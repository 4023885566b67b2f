"""A whole EventPlane stack as real processes on servers of its own, for tests that break things."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from eventplane import db, servers, tenants

BATCH = "/api/v1/tracking/batch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """Own embedded Postgres and Valkey (which tests may stop), edge and worker processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg_dir = root / "postgres"
        self.valkey_dir = root / "valkey"
        self.port = free_port()
        self.prefix = f"faults:{uuid.uuid4().hex[:6]}:"
        self.database_url = ""
        self.redis_url = ""
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_servers(self) -> None:
        self.database_url, _ = servers.ensure_postgres(self.pg_dir)
        self.redis_url, _ = servers.ensure_valkey(self.valkey_dir)

    def stop_servers(self) -> None:
        servers.stop(self.root)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "EVENTPLANE_REDIS_PREFIX": self.prefix,
            "EVENTPLANE_INGEST_PORT": str(self.port),
            "EVENTPLANE_JOB_TIMEOUT": "3",  # a killed worker's batch is picked up again after 13 s
            "EVENTPLANE_WORKER_POLL_DELAY": "0.02",
            "EVENTPLANE_WORKER_METRICS_PORT": "0",
            "EVENTPLANE_RATE_LIMIT_SCALE": "0",  # one tenant sends at full speed: faults, not its plan's rate
        }

    def spawn(self, command: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{command}-{len(self.procs)}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen([sys.executable, "-m", "eventplane.cli", command], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        self.procs.append(proc)
        return proc

    async def start_edge(self) -> subprocess.Popen[bytes]:
        proc = self.spawn("ingest")
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return proc
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise RuntimeError(f"edge did not start; see {self.root}")

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
        self.procs.clear()


async def make_key(stack: Stack) -> tuple[str, str]:
    await db.migrate(stack.database_url)
    conn = await asyncpg.connect(stack.database_url)
    try:
        slug = f"f-{uuid.uuid4().hex[:10]}"
        workspace = await tenants.create_workspace(conn, name=slug, slug=slug)
        _, key = await tenants.create_api_key(conn, workspace_id=workspace["id"], name="f", scope_names=["write"])
    finally:
        await conn.close()
    return workspace["id"], key


@dataclass
class Tally:
    """What the client saw: every batch is retried until it gets a 202."""

    sent: int = 0
    acknowledged: int = 0
    refused_503: int = 0
    transport_errors: int = 0
    other: list[int] = field(default_factory=list)


async def send_until_acknowledged(
    port: int, key: str, total: int, *, batch: int = 100, concurrency: int = 8, pace: float = 0.0
) -> tuple[Tally, set[str]]:
    """Send `total` events with unique message_ids; retry each batch on 503 or a broken connection."""
    tally = Tally()
    acked: set[str] = set()
    ids = [uuid.uuid4().hex for _ in range(total)]
    chunks = [ids[i : i + batch] for i in range(0, total, batch)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    async def one(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            body = {"events": [{"event_type": "fault", "user_id": "u", "message_id": m} for m in chunk]}
            tally.sent += len(chunk)
            while True:
                try:
                    r = await client.post(BATCH, json=body, headers={"X-API-Key": key})
                except httpx.TransportError:
                    tally.transport_errors += 1
                    await asyncio.sleep(0.1)
                    continue
                if r.status_code == 202:
                    tally.acknowledged += len(chunk)
                    acked.update(chunk)
                    break
                if r.status_code == 503:
                    tally.refused_503 += 1
                    await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 0.2))
                    continue
                tally.other.append(r.status_code)
                break
            await asyncio.sleep(pace)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        await asyncio.gather(*(one(client) for _ in range(concurrency)))
    return tally, acked


async def wait_stored(database_url: str, workspace_id: str, expected: int, limit: float = 60) -> tuple[int, int]:
    """(rows, distinct message_ids) once `expected` distinct ids are stored, or when `limit` runs out."""
    deadline = time.monotonic() + limit
    while True:
        try:
            conn = await asyncpg.connect(database_url, timeout=2)
            try:
                counted = await conn.fetchrow(
                    "SELECT count(*), count(DISTINCT message_id) FROM events WHERE workspace_id = $1", workspace_id
                )
                assert counted is not None
                rows, distinct = counted[0], counted[1]
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            rows = distinct = -1
        if distinct >= expected or time.monotonic() > deadline:
            return rows, distinct
        await asyncio.sleep(0.25)


async def stored_ids(database_url: str, workspace_id: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return {r[0] for r in await conn.fetch("SELECT message_id FROM events WHERE workspace_id = $1", workspace_id)}
    finally:
        await conn.close()
