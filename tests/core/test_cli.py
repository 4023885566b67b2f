"""The operator's bootstrap path: the CLI prints JSON, and the key it prints works at the edge."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import pkgutil
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from redis.asyncio import Redis

import eventplane
from eventplane.keyformat import hash_key
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import drain


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": settings.redis_dsn,
           "EVENTPLANE_REDIS_PREFIX": settings.redis_prefix}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "eventplane.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_workspace_and_key_create_then_revoke(settings: Settings, edge: httpx.AsyncClient) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    ws = _cli(settings, "workspace", "create", "--name", "CLI Co", "--slug", slug)
    assert ws.returncode == 0, ws.stderr
    workspace = json.loads(ws.stdout)
    assert (workspace["slug"], workspace["plan"], workspace["is_active"]) == (slug, "free", True)

    again = _cli(settings, "workspace", "create", "--name", "CLI Co", "--slug", slug)
    assert again.returncode == 1 and "exists already" in again.stderr

    made = _cli(settings, "key", "create", "--workspace", slug, "--scopes", "track:write")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["scopes"] == ["track:write"] and key["key"].startswith(key["key_prefix"])

    event = {"event_type": "cli", "user_id": "u"}
    r = await edge.post("/api/v1/tracking/track", json=event, headers={"X-API-Key": key["key"]})
    assert r.status_code == 202
    await drain(settings)
    shown = _cli(settings, "events", "--workspace", slug)
    assert shown.returncode == 0, shown.stderr
    (line,) = shown.stdout.splitlines()
    assert json.loads(line)["event_type"] == "cli"

    revoked = _cli(settings, "key", "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    # The revoke publishes an eviction that the edge's subscriber applies moments later (ingest/auth.py):
    # on a loaded machine the edge once accepted one more request first. It must refuse the key soon after.
    deadline = time.monotonic() + 5
    while (
        r := await edge.post("/api/v1/tracking/track", json=event, headers={"X-API-Key": key["key"]})
    ).status_code == 202:
        assert time.monotonic() < deadline, "the edge kept accepting a revoked key"
        await asyncio.sleep(0.05)
    assert r.status_code == 401


def test_unknown_scope_and_unknown_workspace_are_refused(settings: Settings) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert _cli(settings, "workspace", "create", "--name", "S", "--slug", slug).returncode == 0
    bad = _cli(settings, "key", "create", "--workspace", slug, "--scopes", "everything")
    assert bad.returncode == 1
    assert "unknown scope 'everything'" in bad.stderr and "track:write" in bad.stderr
    missing = _cli(settings, "key", "create", "--workspace", f"{slug}-nope")
    assert missing.returncode == 1 and "no workspace" in missing.stderr


async def test_set_plan_changes_the_plan_and_tells_every_edge(
    settings: Settings, redis: Redis, keys: RedisNames
) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert _cli(settings, "workspace", "create", "--name", "Plan Co", "--slug", slug).returncode == 0
    key = json.loads(_cli(settings, "key", "create", "--workspace", slug).stdout)
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.key_channel)
    confirmed = await pubsub.get_message(timeout=5)
    assert confirmed is not None and confirmed["type"] in ("subscribe", b"subscribe")
    try:
        done = await asyncio.to_thread(_cli, settings, "workspace", "set-plan", slug, "pro")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["plan"] == "pro"
        deadline = time.monotonic() + 1
        published: list[str] = []
        while hash_key(key["key"]) not in published:
            assert time.monotonic() < deadline, f"no invalidation within 1 s: {published}"
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                published.append(message["data"].decode() if isinstance(message["data"], bytes) else message["data"])
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    missing = _cli(settings, "workspace", "set-plan", "no-such-slug", "pro")
    assert missing.returncode == 1 and "no workspace" in missing.stderr
    assert _cli(settings, "workspace", "set-plan", slug, "platinum").returncode == 2  # argparse: not a plan


PROCESSES = ("ingest", "api", "workers")


def test_the_core_imports_no_process() -> None:
    """Not at import time, not inside a function, not by a dotted name handed to uvicorn or importlib."""
    found = []
    for path in sorted(Path(eventplane.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
                names = [node.value] if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+(:\w+)?", node.value) else []
            else:
                continue
            found += [f"{path.name}:{node.lineno} {name}" for name in names if name.split(".")[0] in PROCESSES]
    assert found == []
    modules = [m.name for m in pkgutil.walk_packages(eventplane.__path__, "eventplane.")]
    script = f"import sys\nfor m in {modules!r}: __import__(m)\n" + (
        f"print(sorted(n for n in sys.modules if n.split('.')[0] in {PROCESSES!r}))"
    )
    imported = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert imported.stdout.strip() == "[]", imported.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize(("command", "module", "port_var"), [("ingest", "ingest", "EVENTPLANE_INGEST_PORT"),
                                                            ("api", "api", "EVENTPLANE_API_PORT")])  # fmt: skip
async def test_a_process_command_becomes_that_process_and_stops_on_sigterm(
    settings: Settings, command: str, module: str, port_var: str
) -> None:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": settings.redis_dsn,
           "EVENTPLANE_REDIS_PREFIX": settings.redis_prefix, port_var: str(port)}  # fmt: skip
    proc = _spawn([sys.executable, "-m", "eventplane.cli", command], env)
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while True:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, f"`eventplane {command}` did not answer /healthz"
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        # The same process (a supervisor's SIGTERM reaches it), now running `python -m <module>`.
        assert psutil.Process(proc.pid).cmdline()[1:] == ["-m", module]
        proc.send_signal(signal.SIGTERM)
        # uvicorn drains, then re-raises the signal it caught (so the exit status is "killed by SIGTERM").
        assert await asyncio.to_thread(proc.wait, 30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
