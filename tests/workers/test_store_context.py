"""The `context` column: stored as sent, and rows queued before it existed still store (context NULL)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from eventplane.settings import Settings
from tests.conftest import Tenant
from workers.store import Store


@pytest_asyncio.fixture
async def writer(settings: Settings) -> AsyncIterator[Store]:
    w = await Store.connect(settings.dsn, 1)
    yield w
    await w.close()


async def test_rows_with_and_without_context(writer: Store, tenant: Tenant, pool: asyncpg.Pool) -> None:
    now_us = time.time_ns() // 1000
    base = (tenant.workspace_id, "", "e", "u", None, None, b"{}", None, None, now_us)
    with_context = (*base[:1], "with", *base[2:], b'{"library": {"name": "x"}}')
    old_edge = (*base[:1], "old", *base[2:])  # 10 fields: queued by an edge from before `context`
    outcome = await writer.store([with_context, old_edge])
    assert (outcome.stored, outcome.dead) == (2, 0)
    rows = await pool.fetch("SELECT message_id, context FROM events WHERE workspace_id = $1", tenant.workspace_id)
    contexts = {r["message_id"]: r["context"] for r in rows}
    assert json.loads(contexts["with"]) == {"library": {"name": "x"}}
    assert contexts["old"] is None
