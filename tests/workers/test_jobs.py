"""The arq jobs run by a real worker in burst mode: parking after unexpected failures, depth reconcile."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from arq import Retry
from arq.constants import job_key_prefix, retry_key_prefix
from redis.asyncio import Redis

from eventplane import queue
from eventplane.queue import JobRows, Row
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from workers import jobs
from workers.state import WorkerState


def row(tenant: Tenant, message_id: str, properties: Any = b"{}") -> Row:
    return (tenant.workspace_id, message_id, "e", "u", None, None, properties, None, None, time.time_ns() // 1000, None)


@pytest_asyncio.fixture
async def state(fresh: Settings) -> AsyncIterator[WorkerState]:
    s = await WorkerState.open(fresh)
    yield s
    await s.close()


async def dead_letters(pool: asyncpg.Pool, tenant: Tenant) -> list[str]:
    rows = await pool.fetch(
        "SELECT message_id FROM dead_letters WHERE workspace_id = $1 ORDER BY 1", tenant.workspace_id
    )
    return [r["message_id"] for r in rows]


async def test_a_batch_is_parked_after_five_unexpected_failures_whatever_its_transient_retries(
    tenant: Tenant, pool: asyncpg.Pool, redis: Redis, fresh: Settings, state: WorkerState,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    keys = RedisNames(fresh.redis_prefix)
    committed = row(tenant, "park-committed")
    await state.store.store([committed])  # an earlier try of this job committed this row
    bug = row(tenant, "park-bug", properties="{}")  # a bug upstream: properties not encoded
    (job_id,) = await queue.enqueue(redis, keys, [([committed, row(tenant, "park-new"), bug], [])])
    # The job had already been retried 40 times for a Postgres outage: arq's try count is 41.
    await redis.set(retry_key_prefix + job_id, 40)
    with caplog.at_level(logging.INFO, logger="eventplane.workers"):
        await drain(fresh)
    unexpected = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert len(unexpected) == jobs.GIVE_UP_ON_BUGS_AFTER - 1  # retried four times, parked at the fifth
    # Parked: the rows not stored before are kept; the one already stored is not made a dead letter.
    assert await dead_letters(pool, tenant) == ["park-bug", "park-new"]
    assert await pool.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", tenant.workspace_id) == 1
    assert (await queue.depth(redis, keys))[0] == 0
    assert await redis.zcard(keys.queue) == 0
    assert not await redis.exists(keys.failures)


async def test_unexpected_failures_are_counted_per_job_not_per_try(
    tenant: Tenant, pool: asyncpg.Pool, redis: Redis, fresh: Settings, state: WorkerState
) -> None:
    keys = RedisNames(fresh.redis_prefix)
    bug = row(tenant, "count-bug", properties="{}")
    (job_id,) = await queue.enqueue(redis, keys, [([bug], [])])
    ctx: dict[str, Any] = {"state": state, "redis": redis, "job_id": job_id, "job_try": 30}
    rows: list[list[Any]] = queue.deserialize(queue.serialize([bug]))
    for _ in range(jobs.GIVE_UP_ON_BUGS_AFTER - 1):
        with pytest.raises(Retry):
            await jobs.store_events(ctx, rows)
    assert await dead_letters(pool, tenant) == []
    assert await jobs.store_events(ctx, rows) == 0
    assert await dead_letters(pool, tenant) == ["count-bug"]


async def test_queue_depth_returns_to_truth_when_arq_drops_jobs_without_our_code(
    tenant: Tenant, pool: asyncpg.Pool, redis: Redis, fresh: Settings, state: WorkerState
) -> None:
    keys = RedisNames(fresh.redis_prefix)
    lost: list[JobRows] = [([row(tenant, f"lost{i}") for i in range(7)], []), ([row(tenant, "lost-too")], [])]
    stored: JobRows = ([row(tenant, f"s{i}") for i in range(3)], [])
    first, second, _ = await queue.enqueue(redis, keys, [*lost, stored])
    await redis.delete(job_key_prefix + first, job_key_prefix + second)  # as when their job keys expire
    await drain(fresh)  # arq drops those two ("job expired") without calling our code, and runs the third
    assert await pool.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", tenant.workspace_id) == 3
    assert (await queue.depth(redis, keys))[0] == 8  # what the edge sees: 8 events that are not queued
    (waiting,) = await queue.enqueue(redis, keys, [([row(tenant, f"w{i}") for i in range(2)], [])])
    await jobs.maintain({"state": state, "redis": redis})  # the worker's cron, twice a minute
    assert (await queue.depth(redis, keys))[0] == 2  # the job still queued keeps its count
    assert await redis.hkeys(keys.pending) == [waiting.encode()]  # type: ignore[misc]


async def test_a_job_held_by_a_move_past_its_retry_budget_is_parked_not_dropped(
    tenant: Tenant, pool: asyncpg.Pool, redis: Redis, fresh: Settings, state: WorkerState
) -> None:
    keys = RedisNames(fresh.redis_prefix)
    (job_id,) = await queue.enqueue(redis, keys, [([row(tenant, "held-1"), row(tenant, "held-2")], [])])
    rows: list[list[Any]] = queue.deserialize(queue.serialize([row(tenant, "held-1"), row(tenant, "held-2")]))
    await redis.sadd(keys.held, tenant.workspace_id)  # type: ignore[misc]
    try:
        ctx: dict[str, Any] = {"state": state, "redis": redis, "job_id": job_id, "job_try": 3}
        with pytest.raises(Retry) as early:
            await jobs.store_events(ctx, rows)
        assert early.value.defer_score == jobs.HOLD_SECONDS * 1000
        ctx["job_try"] = jobs.HOLD_FAST_TRIES
        with pytest.raises(Retry) as later:
            await jobs.store_events(ctx, rows)
        assert later.value.defer_score == jobs.HOLD_MAX_SECONDS * 1000
        ctx["job_try"] = jobs.MAX_TRIES - 1  # arq's last try: after it, arq drops the job
        assert await jobs.store_events(ctx, rows) == 0
        assert await dead_letters(pool, tenant) == ["held-1", "held-2"]
        assert (await queue.depth(redis, keys))[0] == 0
    finally:
        await redis.srem(keys.held, tenant.workspace_id)  # type: ignore[misc]
