"""The worker's write path against real Postgres and Redis: exactly once, dead letters, partitions."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from eventplane import queue
from eventplane.errors import TRANSIENT_ERRORS
from eventplane.queue import Row
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from workers import jobs
from workers.commits import Committer
from workers.metrics import WorkerMetrics
from workers.state import WorkerState
from workers.store import Outcome, Store


def row(tenant: Tenant, message_id: str, *, event_type: str = "e", properties: bytes = b"{}", days: int = 0) -> Row:
    now_us = time.time_ns() // 1000 + days * 86_400_000_000
    return (tenant.workspace_id, message_id, event_type, "u", None, 1.5, properties, None, None, now_us, None)


@pytest_asyncio.fixture
async def writer(settings: Settings) -> AsyncIterator[Store]:
    w = await Store.connect(settings.dsn, 2)
    yield w
    await w.close()


async def count(pool: asyncpg.Pool, tenant: Tenant) -> int:
    n: int = await pool.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", tenant.workspace_id)
    return n


async def test_a_job_run_twice_stores_once_and_counts_once(
    tenant: Tenant, writer: Store, pool: asyncpg.Pool, redis: Redis, fresh: Settings
) -> None:
    keys = RedisNames(fresh.redis_prefix)
    rows = [row(tenant, f"m{i}") for i in range(50)]
    (job_id,) = await queue.enqueue(redis, keys, [(rows, ["req-1"])])
    assert (await queue.depth(redis, keys))[0] == 50
    state = await WorkerState.open(fresh)
    ctx: dict[str, Any] = {"state": state, "redis": redis, "job_id": job_id, "job_try": 1}
    as_queued: list[list[Any]] = queue.deserialize(queue.serialize(rows))  # what arq hands the job
    await jobs.store_events(ctx, as_queued)
    assert await count(pool, tenant) == 50
    # The worker died before arq recorded the result, so arq runs the same job again.
    await jobs.store_events({**ctx, "job_try": 2}, as_queued)
    await state.close()
    assert await count(pool, tenant) == 50
    usage = await pool.fetchval("SELECT sum(events) FROM usage_daily WHERE workspace_id = $1", tenant.workspace_id)
    assert usage == 50
    assert (await queue.depth(redis, keys))[0] == 0


async def test_arq_worker_runs_queued_jobs(tenant: Tenant, pool: asyncpg.Pool, redis: Redis, fresh: Settings) -> None:
    keys = RedisNames(fresh.redis_prefix)
    await queue.enqueue(redis, keys, [([row(tenant, f"a{i}") for i in range(10)], []), ([row(tenant, "b")], [])])
    await drain(fresh)
    assert await count(pool, tenant) == 11
    assert await redis.zcard(keys.queue) == 0
    assert (await queue.depth(redis, keys))[0] == 0


async def test_poison_events_go_to_dead_letters_and_batch_mates_are_stored(
    tenant: Tenant, writer: Store, pool: asyncpg.Pool
) -> None:
    good = [row(tenant, f"ok{i}") for i in range(3)]
    nul_json = row(tenant, "bad-json", properties=b'{"k": "\\u0000"}')  # jsonb refuses \u0000
    nul_text = row(tenant, "bad-text", event_type="a\x00b")  # text refuses NUL
    outcome = await writer.store([good[0], nul_json, good[1], nul_text, good[2]])
    assert (outcome.stored, outcome.dead) == (3, 2)
    assert await count(pool, tenant) == 3
    dead = await pool.fetch(
        "SELECT message_id, reason, sqlstate, payload FROM dead_letters WHERE workspace_id = $1 ORDER BY 1",
        tenant.workspace_id,
    )
    assert [d["message_id"] for d in dead] == ["bad-json", "bad-text"]
    assert all(d["reason"] for d in dead)
    assert b"bad-json" in dead[0]["payload"]
    # Replayed (a job run twice), the dead letters are not doubled.
    assert (await writer.store([nul_json, nul_text])).stored == 0
    n = await pool.fetchval("SELECT count(*) FROM dead_letters WHERE workspace_id = $1", tenant.workspace_id)
    assert n == 2


async def test_missing_partition_is_created_on_demand(tenant: Tenant, writer: Store, pool: asyncpg.Pool) -> None:
    far = row(tenant, f"future-{uuid.uuid4()}", days=40)  # beyond the week of partitions made ahead
    day = dt.datetime.fromtimestamp(far[9] / 1e6, dt.UTC).strftime("%Y%m%d")  # received_at, µs
    assert await pool.fetchval("SELECT to_regclass($1)", f"events_p{day}") is None
    assert (await writer.store([far])).stored == 1
    assert await pool.fetchval("SELECT to_regclass($1)::text", f"events_p{day}") == f"events_p{day}"


async def test_batch_writer_commits_concurrent_jobs_together_and_acks_after_commit(
    tenant: Tenant, writer: Store, pool: asyncpg.Pool
) -> None:
    batch = Committer(writer, WorkerMetrics(), max_rows=5000, max_age=0.2, concurrency=1)
    batch.start()
    jobs_rows = [[row(tenant, f"j{j}-{i}") for i in range(10)] for j in range(5)]
    adds = [asyncio.create_task(batch.add(rows)) for rows in jobs_rows]
    await asyncio.sleep(0.05)
    assert not any(a.done() for a in adds)  # still gathering: nothing acknowledged before the commit
    assert await count(pool, tenant) == 0
    await asyncio.gather(*adds)
    assert await count(pool, tenant) == 50
    # Size reached: a commit starts without waiting for the age.
    big = Committer(writer, WorkerMetrics(), max_rows=20, max_age=60, concurrency=1)
    big.start()
    await asyncio.wait_for(big.add([row(tenant, f"big{i}") for i in range(25)]), 5)
    await batch.close()
    await big.close()


async def test_a_failed_commit_fails_every_job_in_it(tenant: Tenant, settings: Settings) -> None:
    broken = await Store.connect(settings.dsn, 1)
    await broken.close()  # every store now fails, as when Postgres goes away
    batch = Committer(broken, WorkerMetrics(), max_rows=5000, max_age=0.01, concurrency=1)
    batch.start()
    results = await asyncio.gather(*(batch.add([row(tenant, f"x{j}")]) for j in range(3)), return_exceptions=True)
    assert all(isinstance(r, TRANSIENT_ERRORS) for r in results), results
    await batch.close()


async def test_the_insert_corrects_event_time_for_client_clock_skew(
    tenant: Tenant, writer: Store, pool: asyncpg.Pool
) -> None:
    utc = dt.UTC
    received = dt.datetime(2026, 11, 22, 12, 0, 0, 500, tzinfo=utc)
    received_us = (received - dt.datetime(1970, 1, 1, tzinfo=utc)) // dt.timedelta(microseconds=1)
    ts = dt.datetime(2020, 1, 1, 0, 0, 0, tzinfo=utc)

    def skewed(mid: str, timestamp: dt.datetime | None, sent_at: dt.datetime | None) -> Row:
        return (tenant.workspace_id, mid, "e", "u", None, None, b"{}", timestamp, sent_at, received_us, None)

    await writer.store([
        skewed("none", None, None),
        skewed("ts-only", ts, None),
        skewed("skewed", ts, ts + dt.timedelta(seconds=30)),  # the client's clock: 30 s after its event
    ])  # fmt: skip
    rows = await pool.fetch('SELECT message_id, "timestamp" FROM events WHERE workspace_id = $1', tenant.workspace_id)
    stored = {r["message_id"]: r["timestamp"] for r in rows}
    assert stored == {
        "none": received,
        "ts-only": ts,
        "skewed": received - dt.timedelta(seconds=30),
    }


async def test_concurrent_commits_of_overlapping_ids_in_opposite_orders_store_each_once(
    tenant: Tenant, settings: Settings, pool: asyncpg.Pool
) -> None:
    first, second = await Store.connect(settings.dsn, 1), await Store.connect(settings.dsn, 1)
    try:
        for attempt in range(4):
            ids = [f"o{attempt}-{i:05d}" for i in range(2000)]
            # Other event types: the usage counters' rows differ and do not put the two in sequence.
            forward = [row(tenant, m, event_type="a") for m in ids]
            backward = [row(tenant, m, event_type="b") for m in reversed(ids)]
            outcomes = await _together(pool, first.store(forward), second.store(backward))
            assert all(isinstance(o, Outcome) for o in outcomes), outcomes  # no DeadlockDetectedError
            assert sum(o.stored for o in outcomes if isinstance(o, Outcome)) == 2000
    finally:
        await first.close()
        await second.close()
    ids = await pool.fetchval(
        "SELECT count(DISTINCT message_id) FROM events WHERE workspace_id = $1", tenant.workspace_id
    )
    assert (await count(pool, tenant), ids) == (8000, 8000)


async def _together(pool: asyncpg.Pool, *stores: Coroutine[Any, Any, Outcome]) -> list[Outcome | BaseException]:
    """Run the stores with their ledger inserts starting at the same moment: a SHARE lock on event_ids
    holds every insert back until all of them wait for it (else one usually ends before the next starts)."""
    async with pool.acquire() as gate, gate.transaction():
        await gate.execute("LOCK TABLE event_ids IN SHARE MODE")
        running = asyncio.gather(*stores, return_exceptions=True)
        deadline = time.monotonic() + 10
        waiting = (  # this database's locks only: the server may hold other test processes' databases
            "SELECT count(*) FROM pg_locks WHERE relation = 'event_ids'::regclass AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        while await pool.fetchval(waiting) < len(stores):
            assert time.monotonic() < deadline, "the stores never reached the ledger"
            await asyncio.sleep(0.01)
    return await asyncio.wait_for(running, 30)


async def test_a_bug_in_our_rows_fails_the_store_instead_of_dead_lettering_it(
    tenant: Tenant, writer: Store, pool: asyncpg.Pool
) -> None:
    good = row(tenant, "fine")
    unencoded = (*row(tenant, "str-properties")[:6], "{}", *row(tenant, "x")[7:])  # properties not bytes
    with pytest.raises(TypeError):
        await writer.store([good, unencoded])
    assert await count(pool, tenant) == 0
    dead = await pool.fetchval("SELECT count(*) FROM dead_letters WHERE workspace_id = $1", tenant.workspace_id)
    assert dead == 0


async def test_a_bug_in_one_job_fails_only_that_job_not_its_batch_mates(
    tenant: Tenant, writer: Store, pool: asyncpg.Pool
) -> None:
    batch = Committer(writer, WorkerMetrics(), max_rows=5000, max_age=0.2, concurrency=1)
    batch.start()
    unencoded = (*row(tenant, "mate-bug")[:6], "{}", *row(tenant, "x")[7:])  # properties not bytes
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                batch.add([row(tenant, "mate-1"), row(tenant, "mate-2")], "good-1"),
                batch.add([unencoded], "buggy"),
                batch.add([row(tenant, "mate-3")], "good-2"),
                return_exceptions=True,
            ),
            30,
        )
    finally:
        await batch.close()
    assert [type(r) for r in results] == [type(None), TypeError, type(None)]
    assert await count(pool, tenant) == 3
