"""The operator's bootstrap path: the CLI prints JSON, and the key it prints works at the edge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx

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
    r = await edge.post("/api/v1/tracking/track", json=event, headers={"X-API-Key": key["key"]})
    assert r.status_code == 401


def test_unknown_scope_and_unknown_workspace_are_refused(settings: Settings) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert _cli(settings, "workspace", "create", "--name", "S", "--slug", slug).returncode == 0
    bad = _cli(settings, "key", "create", "--workspace", slug, "--scopes", "everything")
    assert bad.returncode == 1
    assert "unknown scope 'everything'" in bad.stderr and "track:write" in bad.stderr
    missing = _cli(settings, "key", "create", "--workspace", f"{slug}-nope")
    assert missing.returncode == 1 and "no workspace" in missing.stderr
