"""Fixtures for the SDK's tests: the real edge's URL, a tenant, what Postgres stored, the usage API."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio

from api.app import create_app as create_api
from eventplane.settings import Settings


@pytest_asyncio.fixture
async def edge_url(edge: httpx.AsyncClient) -> str:
    return str(edge.base_url).rstrip("/")


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        yield client


async def stored(pool: asyncpg.Pool, workspace_id: str) -> dict[str, asyncpg.Record]:
    """The stored rows by message id; fails if any message id was stored twice."""
    rows = await pool.fetch("SELECT * FROM events WHERE workspace_id = $1", workspace_id)
    twice = [m for m, n in Counter(r["message_id"] for r in rows).items() if n > 1]
    assert not twice, f"stored more than once: {twice}"
    return {r["message_id"]: r for r in rows}


def dead_url() -> str:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
