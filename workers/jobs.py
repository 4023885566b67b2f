"""The arq job that stores a batch, and the once-a-minute maintenance job."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import asyncpg
from arq import Retry
from redis.exceptions import RedisError

from eventplane import client_drops, db, queue
from eventplane.queue import Keys
from workers.batch import BatchWriter
from workers.store import dump_row

log = logging.getLogger("eventplane.workers")
MAX_TRIES = 50_000  # with backoff capped at 10 s: about 5 days of Postgres outage before arq gives up
# The store must end before arq's job timeout, which arq treats as a failure and drops the job;
# ours raises Retry instead. A 5,000-event batch takes about 0.2 s.
DEADLINE_SHARE = 0.75
GIVE_UP_ON_BUGS_AFTER = 5  # tries of an unexpected error before the batch is parked in dead_letters

# "Not now": Postgres or the network is down or busy. The batch is retried later, never dropped.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    RedisError,
)


def backoff_seconds(job_try: int) -> float:
    # 0.25 s doubling to 10 s: after an outage, work resumes within about 10 s of Postgres returning.
    return float(min(10.0, 0.25 * 2 ** min(job_try - 1, 10)) * random.uniform(0.8, 1.2))


async def store_events(ctx: dict[str, Any], rows: list[list[Any]], request_ids: list[str] | None = None) -> int:
    """Store one queued batch. Acknowledged (returns) only after the commit that holds its rows."""
    batch: BatchWriter = ctx["batch"]
    keys: Keys = ctx["keys"]
    job_try: int = ctx.get("job_try", 1)
    try:
        # Our own deadline, inside arq's: arq treats its timeout as a failure and drops the job.
        async with asyncio.timeout(ctx["deadline"]):
            await batch.add(rows, ctx["job_id"], request_ids or ())
        await queue.mark_stored(ctx["redis"], keys, ctx["job_id"])
    except TRANSIENT as exc:
        delay = backoff_seconds(job_try)
        log.warning("batch of %d: %s, retry %d in %.1fs", len(rows), type(exc).__name__, job_try, delay)
        raise Retry(defer=delay) from exc
    except Exception as exc:
        if job_try < GIVE_UP_ON_BUGS_AFTER:
            log.exception("batch of %d failed unexpectedly; retry %d", len(rows), job_try)
            raise Retry(defer=backoff_seconds(job_try)) from exc
        await _park(ctx, rows, exc)
        return 0
    log.debug("job %s: %d events committed (try %d)", ctx["job_id"], len(rows), job_try)
    return len(rows)


async def _park(ctx: dict[str, Any], rows: list[list[Any]], exc: BaseException) -> None:
    """After repeated unexpected failures, keep the whole batch in dead_letters rather than drop it."""
    log.error("batch of %d parked in dead_letters after %d tries: %r", len(rows), ctx.get("job_try"), exc)
    pool: asyncpg.Pool = ctx["pool"]
    reason = f"unexpected {type(exc).__name__}: {exc}"[:2000]
    await pool.executemany(
        "INSERT INTO dead_letters (workspace_id, message_id, payload, reason) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (workspace_id, message_id) DO NOTHING",
        [(str(row[0]), str(row[1]), dump_row(row), reason) for row in rows],
    )
    await queue.mark_stored(ctx["redis"], ctx["keys"], ctx["job_id"])


async def maintain(ctx: dict[str, Any]) -> None:
    """Twice a minute: partitions a week ahead, keys' last_used_at and SDKs' drop counts from what the
    edges reported."""
    pool: asyncpg.Pool = ctx["pool"]
    async with pool.acquire() as conn:
        await db.ensure_partitions(conn)
    await fold_last_used(ctx["redis"], ctx["keys"], pool)
    await client_drops.fold(ctx["redis"], ctx["keys"], pool)


async def fold_last_used(redis: Any, keys: Keys, pool: asyncpg.Pool) -> int:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.key_last_used)
        pipe.delete(keys.key_last_used)
        used, _ = await pipe.execute()
    if not used:
        return 0
    ids = [k.decode() for k in used]
    stamps = [float(v) for v in used.values()]
    await pool.execute(
        "UPDATE api_keys SET last_used_at = greatest(last_used_at, to_timestamp(u.ts)) "
        "FROM unnest($1::uuid[], $2::float8[]) AS u(id, ts) WHERE api_keys.id = u.id",
        ids,
        stamps,
    )
    return len(ids)
