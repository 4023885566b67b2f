"""What one worker process owns: built once at start, shared by every arq Worker it runs, closed once.

arq's Worker ends when Redis drops, and `workers.main.serve` starts a new one; the Postgres pools, the
committer and the metrics server outlive it, so a Redis outage neither leaks connections nor freezes
the metrics (a new server on the same port would fail "port in use" while the old one served the old
registry). Jobs find this object in their ctx as `ctx["state"]`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import asyncpg

from eventplane import db
from eventplane.live import LivePublisher
from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from workers.commits import Committer
from workers.metrics import WorkerMetrics
from workers.store import Store

# Deadline of one store inside arq's job timeout: arq treats its own timeout as a failure and drops
# the job; ours raises Retry instead. A 5,000-event batch takes about 0.2 s.
DEADLINE_SHARE = 0.75


def application_name(pid: int | None = None) -> str:
    """How a worker process's connections show in pg_stat_activity (one name per process)."""
    return f"eventplane-worker {pid or os.getpid()}"


@dataclass(frozen=True)
class WorkerState:
    keys: RedisNames
    pool: asyncpg.Pool  # maintenance and parking
    store: Store
    committer: Committer
    metrics: WorkerMetrics
    deadline: float  # seconds one store may take (see DEADLINE_SHARE)
    live: LivePublisher  # committed rows to the api's live streams (its own Redis connection)
    dedup_window_days: int  # the ledger's window (workers/ledger.py)

    @classmethod
    async def open(cls, settings: Settings) -> WorkerState:
        name = {"application_name": application_name()}
        pool = await db.create_pool(settings.dsn, min_size=1, max_size=2, server_settings=name)
        try:
            writer = await Store.connect(
                settings.dsn, settings.worker_flush_concurrency, settings.dedup_window_days, server_settings=name
            )
        except BaseException:
            await db.close_pool(pool)
            raise
        metrics = WorkerMetrics()
        metrics.serve(settings.worker_metrics_port)
        batch = Committer(
            writer,
            metrics,
            max_rows=settings.worker_batch_rows,
            max_age=settings.worker_batch_age,
            concurrency=settings.worker_flush_concurrency,
        )
        batch.start()
        names = RedisNames(settings.redis_prefix)
        live = LivePublisher(connect_redis(settings.redis_dsn), names)
        deadline = settings.job_timeout * DEADLINE_SHARE
        return cls(names, pool, writer, batch, metrics, deadline, live, settings.dedup_window_days)

    async def close(self) -> None:
        await self.committer.close()
        await self.live.close()
        await self.store.close()
        await db.close_pool(self.pool)
        self.metrics.close()
