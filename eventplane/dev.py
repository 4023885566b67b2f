"""`eventplane dev`: ingest, api and a worker (and one per registered instance) in the foreground, logs
interleaved, crashes restarted.

Children run in their own sessions so Ctrl-C reaches only this supervisor, which then stops them in
order (SIGTERM, so uvicorn drains requests and arq finishes its jobs) and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time

COLORS = {"ingest": "\033[36m", "api": "\033[35m", "worker": "\033[33m"}
RESET = "\033[0m"
STOP_TIMEOUT = 15.0
HEALTHY_AFTER = 30.0  # a child that ran this long restarts with the shortest backoff again


class Supervisor:
    def __init__(self, commands: dict[str, list[str]], env: dict[str, str]) -> None:
        self._commands = commands
        self._env = env
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()
        self._color = sys.stdout.isatty()
        self._width = max(len(name) for name in commands)

    def say(self, name: str, line: str) -> None:
        label = name.ljust(self._width)
        if self._color:
            label = f"{COLORS.get(name.split()[0], '')}{label}{RESET}"
        print(f"{label} | {line}", flush=True)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        tasks = [asyncio.create_task(self._keep_running(name, argv)) for name, argv in self._commands.items()]
        await self._stopping.wait()
        self.say("dev", "stopping...")
        await asyncio.gather(*(self._stop(name) for name in list(self._procs)))
        await asyncio.gather(*tasks, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    async def _keep_running(self, name: str, argv: list[str]) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *argv, env=self._env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            self._procs[name] = proc
            assert proc.stdout is not None
            async for raw in proc.stdout:
                self.say(name, raw.decode(errors="replace").rstrip())
            code = await proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > HEALTHY_AFTER:
                backoff = 1.0
            self.say(name, f"exited with code {code}; restarting in {backoff:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, 30.0)

    async def _stop(self, name: str) -> None:
        proc = self._procs[name]
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            self.say(name, "did not stop in time; killing")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
