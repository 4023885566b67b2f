"""The whole stack under sustained load: events stored per second, and the lag from receipt to commit.

Three phases against one edge and one worker (both on the server core, with Postgres and Valkey):
1. probe: wrk, closed loop, batches of 100; the rate at which events are *stored* meanwhile is the
   stack's saturated store rate S. The edge's high-water mark bounds the backlog this leaves.
2. calibration: wrk paced to FRACTION x S; if the queue grows, the rate for phase 3 is 0.9 x what was
   stored meanwhile (see `calibrate`), else FRACTION x S.
3. sustained: wrk paced to that rate for at least 60 s. Reported: events stored per second
   (from `usage_daily`, which the worker updates in the same transaction as the rows), the queue depth
   in events every second, and the lag `commit time - received_at` of every event received in the
   measured window, from Postgres's own commit timestamps (`track_commit_timestamp`, on in the bench's
   embedded Postgres), so nothing is added to the product to measure it.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from loadtests import loadgen
from loadtests.stack import Env, cpu_seconds

LAG_SQL = """
SELECT count(*)::bigint AS n,
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM pg_xact_commit_timestamp(xmin) - received_at)) AS lag
FROM events WHERE received_at >= to_timestamp($1) AND received_at < to_timestamp($2)
"""
STORED_SQL = "SELECT coalesce(sum(events), 0)::bigint FROM usage_daily"


@dataclass
class Samples:
    """One sample a second: (seconds since start, events stored so far, events queued)."""

    points: list[tuple[float, int, int]] = field(default_factory=list)

    def rate(self, start: float, end: float) -> float:
        inside = [p for p in self.points if start <= p[0] <= end]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def max_depth(self, start: float = 0.0) -> int:
        return max((p[2] for p in self.points if p[0] >= start), default=0)


async def _sample(env: Env, job: Future[Any], samples: Samples, origin: float, every: float = 1.0) -> None:
    conn = await asyncpg.connect(env.database_url)
    redis = connect_redis(env.redis_url)
    key = RedisNames(env.redis_prefix).queued_events
    try:
        while True:
            stored = await conn.fetchval(STORED_SQL)
            depth = int(await redis.get(key) or 0)
            samples.points.append((time.monotonic() - origin, stored, depth))
            if job.done():
                return
            await asyncio.sleep(every)
    finally:
        await conn.close()
        await redis.aclose()


def while_sampling(env: Env, job: Future[Any], every: float = 1.0) -> Samples:
    samples = Samples()
    asyncio.run(_sample(env, job, samples, time.monotonic(), every))
    return samples


async def _drain(env: Env, limit: float) -> float:
    redis = connect_redis(env.redis_url)
    start = time.monotonic()
    try:
        while int(await redis.get(RedisNames(env.redis_prefix).queued_events) or 0) > 0:
            if time.monotonic() - start > limit:
                break
            await asyncio.sleep(0.1)
        return time.monotonic() - start
    finally:
        await redis.aclose()


def drain(env: Env, timeout: float = 60.0) -> float:
    """Wait until the workers have stored everything queued; returns how long that took."""
    return asyncio.run(_drain(env, timeout))


async def _lag(env: Env, start: float, end: float) -> tuple[int, float | None, float | None]:
    if not env.commit_timestamps:
        return 0, None, None
    conn = await asyncpg.connect(env.database_url)
    try:
        row = await conn.fetchrow(LAG_SQL, start, end)
    finally:
        await conn.close()
    assert row is not None
    lag = row["lag"] or [None, None]
    return row["n"], lag[0], lag[1]


@dataclass(frozen=True)
class Probe:
    stored_per_s: float
    accepted_per_s: float
    errors: int


def probe(env: Env, url: str, keys_file: Path, bodies_file: Path, seconds: float, batch: int) -> Probe:
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(loadgen.wrk, url, keys_file, bodies_file, seconds)
        samples = while_sampling(env, job, every=0.5)
        closed = job.result()
    settle = min(2.0, seconds / 4)  # the worker's first jobs start only after the first enqueues
    stored = samples.rate(settle, seconds)
    return Probe(stored, closed.ok_per_second * batch, closed.errors)


@dataclass(frozen=True)
class Calibration:
    offered_per_s: float
    stored_per_s: float
    depth_growth: int
    chosen_per_s: float


def calibrate(
    env: Env, url: str, files: tuple[Path, Path], events_per_s: float, seconds: float, batch: int
) -> Calibration:
    """Offer `events_per_s` at a constant pace for `seconds`. If the queue grew by more than a second of
    traffic meanwhile, the stack cannot sustain that rate with requests arriving one by one (the closed
    loop's concurrency makes bigger jobs than a steady stream does): choose 0.9 x the rate it stored."""
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(loadgen.wrk, url, *files, seconds, rate=events_per_s / batch)
        samples = while_sampling(env, job)
        job.result()
    start = seconds / 3
    growth = samples.points[-1][2] - next((p[2] for p in samples.points if p[0] >= start), 0)
    stored = samples.rate(start, samples.points[-1][0])
    chosen = events_per_s if growth <= events_per_s else max(batch, 0.9 * stored)
    drain(env)
    return Calibration(events_per_s, stored, growth, chosen)


@dataclass(frozen=True)
class Sustained:
    offered_events_per_s: float
    accepted_events_per_s: float
    stored_per_s: float
    seconds: float
    failed_requests: int
    max_depth: int
    final_depth: int
    drain_seconds: float
    lag_events: int
    lag_p50_s: float | None
    lag_p99_s: float | None
    depth_series: list[tuple[float, int, int]]
    # CPU time per event accepted, by process (edge, worker, postgres, valkey), from the load's start to
    # the drained queue: the share of the one core each costs, unlike events/s not skewed by other load.
    cpu_us_per_event: dict[str, float] = field(default_factory=dict)

    @property
    def bounded(self) -> bool:
        """The queue never held more than two seconds of traffic and nothing was refused."""
        return self.failed_requests == 0 and self.max_depth <= 2 * self.offered_events_per_s


def sustained(
    env: Env,
    url: str,
    files: tuple[Path, Path],
    events_per_s: float,
    seconds: float,
    batch: int,
    cpu_of: dict[str, int] | None = None,
) -> Sustained:
    """`events_per_s` offered for `seconds` by paced wrk; `files` are the keys and the batch bodies;
    `cpu_of`: processes (name: pid) whose CPU time per event to report."""
    warm = min(5.0, seconds / 4)  # let the queue and the worker reach their steady state
    cpu_before = cpu_seconds(cpu_of or {})
    with ThreadPoolExecutor(1) as pool:
        t0 = time.time()
        job = pool.submit(loadgen.wrk, url, *files, seconds, rate=events_per_s / batch)
        samples = while_sampling(env, job)
        result = job.result()
    total = samples.points[-1][0]
    waited = drain(env)
    cpu_after = cpu_seconds(cpu_of or {})
    accepted = max(1, result.requests - result.errors) * batch
    cpu = {k: (cpu_after[k] - cpu_before[k]) / accepted * 1e6 for k in cpu_before}
    lag_n, p50, p99 = asyncio.run(_lag(env, t0 + warm, t0 + total))
    return Sustained(
        offered_events_per_s=events_per_s,
        accepted_events_per_s=result.ok_per_second * batch,
        stored_per_s=samples.rate(warm, total),
        seconds=total - warm,
        failed_requests=result.errors,
        max_depth=samples.max_depth(warm),
        final_depth=samples.points[-1][2],
        drain_seconds=waited,
        lag_events=lag_n,
        lag_p50_s=p50,
        lag_p99_s=p99,
        depth_series=samples.points,
        cpu_us_per_event=cpu,
    )
