"""Building and running an arq worker from Settings (the `eventplane worker` command)."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker

from eventplane import db, queue
from eventplane.queue import Keys
from eventplane.settings import Settings
from workers import jobs
from workers.store import Writer

# Must exceed jobs.STORE_DEADLINE_SECONDS. A killed worker's job is run again by another worker once
# arq's in-progress mark expires: JOB_TIMEOUT_SECONDS + 10 s after it started.
JOB_TIMEOUT_SECONDS = 20


def worker_kwargs(settings: Settings, **overrides: Any) -> dict[str, Any]:
    keys = Keys(settings.redis_prefix)

    async def startup(ctx: dict[str, Any]) -> None:
        pool = await db.create_pool(settings.dsn, min_size=1, max_size=settings.worker_max_jobs + 1)
        ctx["pool"] = pool
        ctx["writer"] = await Writer.connect(settings.dsn, settings.worker_max_jobs)
        ctx["keys"] = keys
        async with pool.acquire() as conn:
            await db.ensure_partitions(conn)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "writer" in ctx:
            await ctx["writer"].close()
        if "pool" in ctx:
            await ctx["pool"].close()

    kwargs: dict[str, Any] = dict(
        functions=[func(jobs.store_events, name=queue.STORE_EVENTS, max_tries=jobs.MAX_TRIES)],
        cron_jobs=[cron(jobs.maintain, second=0, run_at_startup=False, unique=True)],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=RedisSettings.from_dsn(settings.redis_dsn),
        queue_name=keys.queue,
        job_serializer=queue.serialize,
        job_deserializer=queue.deserialize,
        max_jobs=settings.worker_max_jobs,
        poll_delay=settings.worker_poll_delay,
        job_timeout=JOB_TIMEOUT_SECONDS,
        keep_result=0,
        max_tries=jobs.MAX_TRIES,
        handle_signals=True,
    )
    kwargs.update(overrides)
    return kwargs


def build_worker(settings: Settings, **overrides: Any) -> Worker:
    return Worker(**worker_kwargs(settings, **overrides))
