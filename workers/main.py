"""Building and running an arq worker from Settings (the `eventplane worker` command)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.exceptions import RedisError

from eventplane import db, queue
from eventplane.queue import Keys
from eventplane.settings import Settings
from workers import jobs
from workers.batch import BatchWriter
from workers.metrics import WorkerMetrics
from workers.store import Writer

log = logging.getLogger("eventplane.workers")


def worker_kwargs(settings: Settings, **overrides: Any) -> dict[str, Any]:
    keys = Keys(settings.redis_prefix)

    async def startup(ctx: dict[str, Any]) -> None:
        pool = await db.create_pool(settings.dsn, min_size=1, max_size=2)
        ctx["pool"] = pool
        writer = await Writer.connect(settings.dsn, settings.worker_flush_concurrency)
        metrics = WorkerMetrics()
        metrics.serve(settings.worker_metrics_port)
        batch = BatchWriter(
            writer,
            metrics,
            max_rows=settings.worker_batch_rows,
            max_age=settings.worker_batch_age,
            concurrency=settings.worker_flush_concurrency,
        )
        batch.start()
        ctx["writer"], ctx["batch"] = writer, batch
        ctx["keys"] = keys
        ctx["deadline"] = settings.job_timeout * jobs.DEADLINE_SHARE
        async with pool.acquire() as conn:
            await db.ensure_partitions(conn)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "batch" in ctx:
            await ctx["batch"].close()
        if "writer" in ctx:
            await ctx["writer"].close()
        if "pool" in ctx:
            await db.close_pool(ctx["pool"])

    kwargs: dict[str, Any] = dict(
        functions=[func(jobs.store_events, name=queue.STORE_EVENTS, max_tries=jobs.MAX_TRIES)],
        cron_jobs=[cron(jobs.maintain, second={0, 30}, run_at_startup=False, unique=True)],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=RedisSettings.from_dsn(settings.redis_dsn),
        queue_name=keys.queue,
        job_serializer=queue.serialize,
        job_deserializer=queue.deserialize,
        max_jobs=settings.worker_max_jobs,
        poll_delay=settings.worker_poll_delay,
        job_timeout=settings.job_timeout,
        job_completion_wait=int(settings.job_timeout),  # on SIGTERM, finish running batches first
        keep_result=0,
        max_tries=jobs.MAX_TRIES,
        handle_signals=True,
    )
    kwargs.update(overrides)
    return kwargs


def build_worker(settings: Settings, **overrides: Any) -> Worker:
    return Worker(**worker_kwargs(settings, **overrides))


async def serve(settings: Settings) -> None:
    """Run a worker until SIGINT/SIGTERM. arq's worker exits when Redis drops; this one starts again.

    A batch interrupted that way rolls back and is run again (and deduplicated) later.
    """
    delay = 1.0
    while True:
        worker = build_worker(settings)
        try:
            await worker.async_run()
            return
        except asyncio.CancelledError:  # arq's signal handler cancels its main task
            return
        except (RedisError, OSError) as exc:
            log.warning("lost Redis (%s); starting the worker again in %.0f s", type(exc).__name__, delay)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await worker.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
