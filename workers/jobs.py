"""The arq job that stores a batch, and the twice-a-minute maintenance job."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from typing import Any

import asyncpg
from arq import Retry
from redis.asyncio import Redis

from eventplane import client_drops, db, queue
from eventplane.errors import TRANSIENT_ERRORS
from eventplane.redis_names import RedisNames
from workers import ledger
from workers.state import WorkerState
from workers.store import dump_row, person_of

log = logging.getLogger("eventplane.workers")
MAX_TRIES = 50_000  # with backoff capped at 10 s: about 5 days of Postgres outage before arq gives up
# Unexpected failures (not transient ones: those retry for as long as MAX_TRIES allows) of one job
# before its batch is parked in dead_letters. Counted per job id in Redis (queue.count_failure).
GIVE_UP_ON_BUGS_AFTER = 5
HOLD_SECONDS = 0.5  # a held job (its workspace is being moved here) is tried again this often at first,
HOLD_MAX_SECONDS = 5.0  # and, after HOLD_FAST_TRIES, this often: a move left held lasts MAX_TRIES x 5 s (~69 h)
HOLD_FAST_TRIES = 120

_PARK = """
INSERT INTO dead_letters (workspace_id, message_id, payload, reason, user_id, anonymous_id, received_at)
SELECT r.workspace_id, r.message_id, r.payload, $5, r.user_id, r.anonymous_id, r.received_at
FROM unnest($1::text[], $2::uuid[], $3::text[], $4::bytea[], $6::text[], $7::text[], $8::timestamptz[])
     AS r(workspace_id, workspace_uuid, message_id, payload, user_id, anonymous_id, received_at)
WHERE NOT EXISTS (
    SELECT 1 FROM event_ids e WHERE e.workspace_id = r.workspace_uuid AND e.message_id = r.message_id
)
ON CONFLICT (workspace_id, message_id) DO NOTHING
"""  # rows an earlier try committed are in the ledger: they are stored, not dead


def backoff_seconds(job_try: int) -> float:
    # 0.25 s doubling to 10 s: after an outage, work resumes within about 10 s of Postgres returning.
    return float(min(10.0, 0.25 * 2 ** min(job_try - 1, 10)) * random.uniform(0.8, 1.2))


async def store_events(ctx: dict[str, Any], rows: list[list[Any]], request_ids: list[str] | None = None) -> int:
    """Store one queued batch. Acknowledged (returns) only after the commit that holds its rows."""
    state: WorkerState = ctx["state"]
    redis: Redis = ctx["redis"]
    job_id: str = ctx["job_id"]
    job_try: int = ctx.get("job_try", 1)
    if rows and await _held(redis, state.keys, str(rows[0][0]), job_try):  # a job holds one workspace's rows
        if job_try >= MAX_TRIES - 1:  # arq would drop it after this try: keep its rows, never lose them
            await _park(state, redis, job_id, rows, RuntimeError("held by a workspace move past the retry budget"))
            return 0
        raise Retry(defer=HOLD_SECONDS if job_try < HOLD_FAST_TRIES else HOLD_MAX_SECONDS)
    try:
        # Our own deadline, inside arq's: arq treats its timeout as a failure and drops the job.
        async with asyncio.timeout(state.deadline):
            await state.committer.add(rows, job_id, request_ids or ())
        await queue.mark_stored(redis, state.keys, job_id)
        state.live.publish(rows)  # after the commit, in a task of its own (eventplane/live.py)
    except TRANSIENT_ERRORS as exc:
        delay = backoff_seconds(job_try)
        log.warning("batch of %d: %s, retry %d in %.1fs", len(rows), type(exc).__name__, job_try, delay)
        raise Retry(defer=delay) from exc
    except Exception as exc:
        failures = await _count_failure(redis, state.keys, job_id, rows, exc)
        if failures < GIVE_UP_ON_BUGS_AFTER:
            log.exception("batch of %d failed unexpectedly (%d of %d)", len(rows), failures, GIVE_UP_ON_BUGS_AFTER)
            raise Retry(defer=backoff_seconds(failures)) from exc
        await _park(state, redis, job_id, rows, exc)
        return 0
    log.debug("job %s: %d events committed (try %d)", job_id, len(rows), job_try)
    return len(rows)


async def _held(redis: Redis, keys: RedisNames, workspace_id: str, job_try: int) -> bool:
    try:
        return await queue.is_held(redis, keys, workspace_id)
    except TRANSIENT_ERRORS as exc:
        raise Retry(defer=backoff_seconds(job_try)) from exc


async def _count_failure(redis: Redis, keys: RedisNames, job_id: str, rows: list[list[Any]], exc: Exception) -> int:
    try:
        return await queue.count_failure(redis, keys, job_id)
    except TRANSIENT_ERRORS as lost:  # cannot count it now: try again later, uncounted
        log.warning("batch of %d failed (%r) and Redis is unreachable (%r); retrying", len(rows), exc, lost)
        raise Retry(defer=backoff_seconds(1)) from exc


async def _park(state: WorkerState, redis: Redis, job_id: str, rows: list[list[Any]], exc: BaseException) -> None:
    """After repeated unexpected failures, keep the batch's rows not already stored in dead_letters
    rather than drop them."""
    log.error("batch of %d parked in dead_letters: %r", len(rows), exc)
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    workspaces = [str(row[0]) if row else "" for row in rows]
    messages = [str(row[1]) if len(row) > 1 else "" for row in rows]
    payloads = [dump_row(row) for row in rows]
    people = [person_of(row) for row in rows]
    users, anonymous, received = [p[0] for p in people], [p[1] for p in people], [p[2] for p in people]
    await state.pool.execute(
        _PARK, workspaces, [_uuid(w) for w in workspaces], messages, payloads, reason, users, anonymous, received
    )
    await queue.mark_stored(redis, state.keys, job_id)


def _uuid(text: str) -> uuid.UUID | None:
    """The row's workspace id, if it is one (the batch failed for an unknown reason: assume nothing)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def maintain(ctx: dict[str, Any]) -> None:
    """Twice a minute: partitions a week ahead (and the ledger's older than its window dropped), keys'
    last_used_at and SDKs' drop counts from what the edges reported, and the queue depth corrected for
    jobs arq ended without our code."""
    state: WorkerState = ctx["state"]
    redis: Redis = ctx["redis"]
    async with state.pool.acquire() as conn:
        await db.ensure_partitions(conn)
        await ledger.drop_expired(conn, state.dedup_window_days)
    await fold_last_used(redis, state.keys, state.pool)
    await client_drops.fold(redis, state.keys, state.pool)
    removed = await queue.reconcile_depth(redis, state.keys)
    if removed:
        log.warning("queue depth corrected by %d events of jobs that no longer exist", removed)


async def fold_last_used(redis: Any, keys: RedisNames, pool: asyncpg.Pool) -> int:
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
