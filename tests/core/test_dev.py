"""The `eventplane dev` supervisor with real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from eventplane.dev import Supervisor
from eventplane.settings import Settings


async def test_a_dying_process_is_logged_and_restarted_and_stop_ends_all(capsys: pytest.CaptureFixture[str]) -> None:
    crash = [sys.executable, "-c", "print('up', flush=True); raise SystemExit(3)"]
    steady = [sys.executable, "-c", "import time; print('steady', flush=True); time.sleep(60)"]
    supervisor = Supervisor({"crashy": crash, "steady": steady}, dict(os.environ))
    running = asyncio.create_task(supervisor.run())
    await asyncio.sleep(2.5)  # first run, exit, 1 s backoff, second run
    children = [p.pid for p in psutil.Process().children(recursive=True)]
    supervisor.stop()
    await asyncio.wait_for(running, 20)
    out = capsys.readouterr().out
    assert out.count("crashy | up") >= 2
    assert "crashy | exited with code 3; restarting in 1s" in out
    assert "steady | steady" in out
    assert not [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


async def test_eventplane_dev_runs_each_process_from_its_own_package(settings: Settings, tmp_path: Path) -> None:
    ports = {name: _free_port() for name in ("ingest", "api", "metrics")}
    env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": settings.redis_dsn,
           "EVENTPLANE_REDIS_PREFIX": settings.redis_prefix, "EVENTPLANE_DATA_DIR": str(tmp_path),
           "EVENTPLANE_INGEST_PORT": str(ports["ingest"]), "EVENTPLANE_API_PORT": str(ports["api"]),
           "EVENTPLANE_WORKER_METRICS_PORT": str(ports["metrics"])}  # fmt: skip
    dev = _spawn([sys.executable, "-m", "eventplane.cli", "dev"], env)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as client:
            for port, path in ((ports["ingest"], "/healthz"), (ports["api"], "/healthz"), (ports["metrics"], "/")):
                while not await _answers(client, f"http://127.0.0.1:{port}{path}"):
                    assert dev.poll() is None, "eventplane dev exited"
                    assert time.monotonic() < deadline, f"nothing answers on port {port}"
                    await asyncio.sleep(0.1)
        children = {" ".join(p.cmdline()[1:]) for p in psutil.Process(dev.pid).children()}
        assert children == {"-m ingest", "-m api", "-m workers"}
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(dev.wait, 60)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
