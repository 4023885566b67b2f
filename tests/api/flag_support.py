"""Helpers of the flag, experiment, audit and results tests: keys by scope, the config document as an
edge reads it, and the config channel as an edge hears it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from api.state import Services
from eventplane import flagconfig
from tests.api.conftest import ApiClient, Team

WS = "/api/v1/workspaces"


def flags_url(workspace_id: str, key: str | None = None) -> str:
    return f"{WS}/{workspace_id}/feature-flags" + (f"/{key}" if key else "")


def experiments_url(workspace_id: str, key: str | None = None, action: str = "") -> str:
    return f"{WS}/{workspace_id}/experiments" + (f"/{key}" if key else "") + (f"/{action}" if action else "")


def services(api: httpx.AsyncClient) -> Services:
    assert isinstance(api, ApiClient)
    svc: Services = api.app.state.services
    return svc


async def key_headers(api: httpx.AsyncClient, team: Team, scopes: list[str]) -> dict[str, str]:
    """An API key of the team's workspace (made by its OWNER) with these scopes, as request headers."""
    r = await api.post(f"{WS}/{team.workspace_id}/api-keys", json={"name": "ci", "scopes": scopes},
                       headers=team.owner.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


async def document(api: httpx.AsyncClient, workspace_id: str) -> dict[str, Any]:
    """The workspace's config document as eventplane.flagconfig gives it to the edge."""
    async with services(api).pool.acquire() as conn:
        config = await flagconfig.load(conn, workspace_id)
    doc: dict[str, Any] = json.loads(config.body)
    assert doc["version"] == config.version
    return doc


@contextlib.asynccontextmanager
async def config_channel(api: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Collects the workspace ids published on the config channel while the block runs (and 1 s after
    it, or until one arrived)."""
    svc = services(api)
    pubsub = svc.redis.pubsub()
    await pubsub.subscribe(svc.keys.config_channel)
    heard: list[str] = []
    try:
        yield heard
        async with asyncio.timeout(1):
            while not heard:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    data = message["data"]
                    heard.append(data.decode() if isinstance(data, bytes) else data)
    except TimeoutError:
        pass
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
