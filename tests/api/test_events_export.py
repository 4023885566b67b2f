"""Export in constant memory: 1,000,000 events streamed as NDJSON by the api running as its own process
(`python -m api`), whose resident memory is sampled while it streams; every event arrives once, newest first."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import psutil

from eventplane import tenants
from eventplane.settings import Settings
from tests.api.event_support import NOW, chunks, load

ROWS = 1_000_000
# 1M events are about 300 MB as NDJSON and several times that as Python objects: a process holding them
# would grow by far more than this.
RSS_BOUND = 80 * 1024 * 1024


class Line(msgspec.Struct):
    message_id: str
    timestamp: dt.datetime


def records(workspace_id: uuid.UUID) -> Iterator[tuple[Any, ...]]:
    for i in range(ROWS):
        stamp = NOW - dt.timedelta(milliseconds=i)
        yield (workspace_id, f"x-{i}", "page_view", f"u{i % 1000}", None, None, f'{{"i": {i}, "plan": "pro"}}',
               stamp, NOW, None)  # fmt: skip


@contextlib.contextmanager
def api_process(settings: Settings, data_dir: Path) -> Iterator[tuple[str, psutil.Process]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": settings.dsn, "REDIS_URL": settings.redis_dsn,
           "EVENTPLANE_REDIS_PREFIX": f"{settings.redis_prefix}export:", "EVENTPLANE_API_HOST": "127.0.0.1",
           "EVENTPLANE_API_PORT": str(port), "EVENTPLANE_DATA_DIR": str(data_dir), "EVENTPLANE_LOG_LEVEL": "WARNING",
           "EVENTPLANE_JWT_SECRET": uuid.uuid4().hex * 2}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "api"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the api process exited"
            assert time.monotonic() < deadline, "the api process did not start within 30 s"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Sampler(threading.Thread):
    """The process's peak RSS, sampled every 20 ms until stopped."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.peak = process.memory_info().rss
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)


async def test_a_million_events_export_in_bounded_memory(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    slug = f"export-{uuid.uuid4().hex[:10]}"
    workspace = await tenants.create_workspace(pool, name=slug, slug=slug)
    workspace_id = uuid.UUID(str(workspace["id"]))
    _, key = await tenants.create_api_key(pool, workspace_id=str(workspace_id), name="s", scope_names=["events:read"])
    for batch in chunks(records(workspace_id), 100_000):
        await load(pool, batch)
    try:
        with api_process(settings, tmp_path / "api") as (base, process):
            url = f"{base}/api/v1/workspaces/{workspace_id}/events/export?format=ndjson"
            async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=60) as client:
                warm = await client.get(url + "&user_id=u1")  # every code path once, before the baseline
                assert warm.status_code == 200 and len(warm.text.splitlines()) == ROWS // 1000
                sampler = Sampler(process)
                baseline = sampler.peak
                sampler.start()
                count, ids, last, ordered = 0, set(), dt.datetime.max.replace(tzinfo=dt.UTC), True
                decoder = msgspec.json.Decoder(Line)
                try:
                    async with client.stream("GET", url) as response:
                        assert response.status_code == 200
                        async for line in response.aiter_lines():
                            event = decoder.decode(line)
                            ordered = ordered and event.timestamp <= last
                            last = event.timestamp
                            ids.add(event.message_id)
                            count += 1
                finally:
                    sampler.stopped.set()
                    sampler.join()
        assert count == ROWS and ids == {f"x-{i}" for i in range(ROWS)} and ordered
        growth = sampler.peak - baseline
        assert growth < RSS_BOUND, f"the api grew by {growth / 2**20:.0f} MiB while exporting"
        print(f"export of {ROWS} events: api RSS {baseline / 2**20:.0f} MiB, peak +{growth / 2**20:.1f} MiB")
    finally:
        await pool.execute("DELETE FROM events WHERE workspace_id = $1", workspace_id)
