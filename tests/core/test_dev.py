"""The `eventplane dev` supervisor with real child processes."""

from __future__ import annotations

import asyncio
import os
import sys

import psutil
import pytest

from eventplane.dev import Supervisor


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
