"""Closing the worker's batch writer ends, and commits what it holds, even when rows arrive just as it
stops its run loop (whose wait_for swallows that cancel on Python 3.11: see eventplane/tasks.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from eventplane.settings import Settings
from tests.conftest import Tenant
from tests.workers.test_store import count, row
from workers.commits import Committer
from workers.metrics import WorkerMetrics
from workers.store import Store


@pytest_asyncio.fixture
async def writer(settings: Settings) -> AsyncIterator[Store]:
    w = await Store.connect(settings.dsn, 1)
    yield w
    await w.close()


async def test_close_ends_and_commits_when_rows_arrive_as_it_stops(
    tenant: Tenant, writer: Store, pool: asyncpg.Pool
) -> None:
    batch = Committer(writer, WorkerMetrics(), max_rows=5000, max_age=30, concurrency=1)
    batch.start()
    first = asyncio.create_task(batch.add([row(tenant, "m1")]))
    for _ in range(3):
        await asyncio.sleep(0)  # the run loop now waits (up to 30 s) for more rows
    second = asyncio.create_task(batch.add([row(tenant, "m2")]))
    await asyncio.sleep(0)  # `second` has woken the run loop, which has not run yet
    closing = asyncio.create_task(batch.close())
    done, _ = await asyncio.wait([closing], timeout=10)
    try:
        assert done, "close() did not end"
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        assert await count(pool, tenant) == 2
    finally:
        deadline = time.monotonic() + 5
        while not closing.done() and time.monotonic() < deadline:  # only on failure: free the run loop
            closing.cancel()
            await asyncio.sleep(0.05)
