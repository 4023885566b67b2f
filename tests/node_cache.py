"""npm packages the tests run (axe-core, Segment's analytics-node), installed once into .venv/node-cache.

`make test` runs pytest in several worker processes: an install holds a lock file, so two workers never
run npm into the same folder at once, and the second finds the first one's install done.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

NODE_CACHE = Path(__file__).resolve().parents[1] / ".venv" / "node-cache"
INSTALL_DEADLINE = 180.0  # one npm install from the registry, or waiting for another worker's


@contextlib.asynccontextmanager
async def _install_lock(deadline: float) -> AsyncIterator[None]:
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    with (NODE_CACHE / ".install.lock").open("w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test process held {NODE_CACHE}/.install.lock for {INSTALL_DEADLINE:.0f} s")
                await asyncio.sleep(0.1)  # polling a lock another process holds: no event to wait on
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def npm_package(spec: str, installed: str, why: str) -> Path:
    """The path of `installed` (a file under node_modules/) of the npm package `spec`, installed first if
    missing. A test that cannot get it fails with `why` and npm's output; it is never skipped."""
    target = NODE_CACHE / "node_modules" / installed
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail(f"{why}: install Node.js 18+ and npm (apt-get install nodejs npm)")
    deadline = time.monotonic() + INSTALL_DEADLINE
    async with _install_lock(deadline):
        if target.exists():  # another worker installed it while this one waited
            return target
        process = await asyncio.create_subprocess_exec(
            npm, "install", "--no-audit", "--no-fund", "--prefix", str(NODE_CACHE), spec,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=NODE_CACHE,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(process.communicate(), max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"npm install {spec} did not finish in {INSTALL_DEADLINE:.0f} s ({why})")
        if process.returncode != 0 or not target.exists():
            pytest.fail(f"npm install {spec} failed ({why}):\n{out.decode(errors='replace')}")
    return target
