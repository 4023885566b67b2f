"""The deduplication window (workers/ledger.py): with a 7-day window, a copy committed on day D is a
duplicate of one claimed on days D-7 .. D, and stored again when the first was claimed on D-8; two
commits racing across midnight store the id once; partitions older than the window are dropped."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from eventplane import db
from eventplane.queue import Row
from eventplane.settings import Settings
from tests.conftest import Tenant
from workers import ledger
from workers.store import Store

WINDOW = 7
TODAY = dt.datetime.now(dt.UTC).date()


def row(tenant: Tenant, message_id: str) -> Row:
    return (tenant.workspace_id, message_id, "e", "u", None, None, b"{}", None, None, time.time_ns() // 1000, None)


@pytest_asyncio.fixture
async def writer(settings: Settings) -> AsyncIterator[Store]:
    w = await Store.connect(settings.dsn, 2, window_days=WINDOW)
    yield w
    await w.close()


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


async def stored(pool: asyncpg.Pool, tenant: Tenant, message_id: str) -> int:
    n: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1 AND message_id = $2", uuid.UUID(tenant.workspace_id),
        message_id,
    )  # fmt: skip
    return n


async def test_a_retry_inside_the_window_is_stored_once(writer: Store, tenant: Tenant, pool: asyncpg.Pool) -> None:
    assert (await writer.store([row(tenant, "m")], day=ago(3))).stored == 1
    assert (await writer.store([row(tenant, "m")], day=ago(3))).stored == 0  # the same day
    assert (await writer.store([row(tenant, "m"), row(tenant, "n")], day=TODAY)).stored == 1  # three days on
    assert await stored(pool, tenant, "m") == 1
    assert await stored(pool, tenant, "n") == 1


async def test_a_retry_across_a_day_boundary_is_stored_once(writer: Store, tenant: Tenant, pool: asyncpg.Pool) -> None:
    assert (await writer.store([row(tenant, "late")], day=ago(1))).stored == 1
    assert (await writer.store([row(tenant, "late")], day=TODAY)).stored == 0
    # And the other way round: a commit of yesterday that ends after today's (both see each other's ids).
    assert (await writer.store([row(tenant, "early")], day=TODAY)).stored == 1
    assert (await writer.store([row(tenant, "early")], day=ago(1))).stored == 0
    assert await stored(pool, tenant, "late") == 1 and await stored(pool, tenant, "early") == 1


async def test_at_the_windows_edge(writer: Store, tenant: Tenant, pool: asyncpg.Pool) -> None:
    """Day D-7 is the last day still deduplicated; an id first claimed on D-8 is stored again."""
    assert (await writer.store([row(tenant, "edge")], day=ago(WINDOW))).stored == 1
    assert (await writer.store([row(tenant, "beyond")], day=ago(WINDOW + 1))).stored == 1
    assert (await writer.store([row(tenant, "edge"), row(tenant, "beyond")], day=TODAY)).stored == 1
    assert await stored(pool, tenant, "edge") == 1
    assert await stored(pool, tenant, "beyond") == 2


async def test_two_commits_racing_across_midnight_store_the_id_once(
    writer: Store, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    """Yesterday's commit has claimed the id but not committed when today's begins: today's waits for it
    (the day guard), then sees the claim and stores nothing."""
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn, ago(1))
        tx = conn.transaction()
        await tx.start()
        await ledger.claim_day(conn, ago(1))
        await conn.execute("INSERT INTO event_ids VALUES ($1, 'race', $2)", uuid.UUID(tenant.workspace_id), ago(1))
        today = asyncio.ensure_future(writer.store([row(tenant, "race")], day=TODAY))
        deadline = time.monotonic() + 10
        waiting = (  # this database's locks only: the server may hold other test processes' databases
            "SELECT count(*) FROM pg_locks WHERE relation = 'event_ids_day_guard'::regclass AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        while not await pool.fetchval(waiting):
            assert not today.done(), today.result()
            assert time.monotonic() < deadline, "today's commit never waited for yesterday's"
            await asyncio.sleep(0.005)
        await tx.commit()
    assert (await asyncio.wait_for(today, 10)).stored == 0
    assert await stored(pool, tenant, "race") == 0  # only the ledger row the test wrote; no event twice


async def test_partitions_older_than_the_window_are_dropped(pool: asyncpg.Pool) -> None:
    day = dt.date(2020, 6, 15)
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn, day)  # 14th .. 22nd
        dropped = await ledger.drop_expired(conn, WINDOW, today=day + dt.timedelta(days=WINDOW + 2))
        left = await ledger.partitions(conn)
    assert {"event_ids_p20200614", "event_ids_p20200615"} <= set(dropped)
    # Today is the 24th: its window starts on the 17th; the 16th is yesterday's D-7, still looked up by a
    # commit that began just before midnight: kept.
    assert dt.date(2020, 6, 16) in left and dt.date(2020, 6, 15) not in left
    assert all(day >= dt.date(2020, 6, 16) for day in left)
