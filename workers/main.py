"""Building and running arq workers from Settings (`python -m workers`, `eventplane worker`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import asyncpg
from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker

from eventplane import db, instances, queue
from eventplane.errors import TRANSIENT_ERRORS
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from workers import deletions, jobs, mail, retention, webhooks
from workers.state import WorkerState

log = logging.getLogger("eventplane.workers")
HEALTHY_AFTER = 30.0  # a worker that ran this long restarts after the shortest delay again
MAX_RETRY_DELAY = 10.0  # seconds between tries to reach Redis or Postgres, at most


def worker_kwargs(settings: Settings, state: WorkerState | None = None, **overrides: Any) -> dict[str, Any]:
    """arq Worker arguments. With `state`, the worker uses it and leaves it open (it belongs to the
    caller, who runs one Worker after another on it); without, the worker opens its own and closes it."""
    owned: list[WorkerState] = []

    async def startup(ctx: dict[str, Any]) -> None:
        if state is None:
            owned.append(await WorkerState.open(settings))
        current = state or owned[0]
        ctx["state"] = current
        ctx["settings"] = settings
        async with current.pool.acquire() as conn:
            await db.ensure_partitions(conn)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if owned:
            await owned.pop().close()

    maintenance = [
        cron(jobs.maintain, second={0, 30}, run_at_startup=False, unique=True),
        # deletion requests live beside the events they delete: every instance's workers run their own
        cron(deletions.run, second=deletions.EVERY_SECONDS, run_at_startup=False, unique=True),
        # so do webhook destinations: their outbox is filled where the events are stored
        cron(webhooks.deliver, second=set(range(60)), run_at_startup=True, unique=True),
    ]
    if not settings.instance:  # management work reads the hub: only the default instance's workers do it
        maintenance += [
            cron(retention.run, second=15, run_at_startup=False, unique=True),  # every instance, from the hub
            cron(mail.deliver_mail, second=mail.EVERY_SECONDS, run_at_startup=True, unique=True),
        ]
    kwargs: dict[str, Any] = dict(
        functions=[func(jobs.store_events, name=queue.STORE_EVENTS, max_tries=jobs.MAX_TRIES)],
        cron_jobs=maintenance,
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=RedisSettings.from_dsn(settings.redis_dsn),
        queue_name=RedisNames(settings.redis_prefix).queue,
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


def build_worker(settings: Settings, state: WorkerState | None = None, **overrides: Any) -> Worker:
    return Worker(**worker_kwargs(settings, state, **overrides))


async def serve(settings: Settings) -> None:
    """Run workers until SIGINT/SIGTERM. arq's worker exits when Redis drops; a new one then starts on
    the same WorkerState (pools, committer, metrics), which is closed once, at exit.

    A batch interrupted that way rolls back and is run again (and deduplicated) later. With
    `settings.instance`, the worker serves that instance's Postgres and Redis, found in the hub's registry.
    """
    opened = await _open_when_reachable(settings)
    if opened is None:
        return
    settings, state = opened
    try:
        await _run_workers(settings, state)
    finally:
        await state.close()


async def _open_when_reachable(settings: Settings) -> tuple[Settings, WorkerState] | None:
    """The instance's settings and the worker's pools, waiting (backing off to MAX_RETRY_DELAY) while Postgres cannot
    be reached: a worker started or restarted during an outage waits for it instead of exiting. None when
    SIGINT/SIGTERM arrive first."""
    delay = 1.0
    while True:
        try:
            served = await serving_instance(settings)
            return served, await WorkerState.open(served)
        except TRANSIENT_ERRORS as exc:
            log.warning("cannot reach Postgres (%s); trying again in %.0f s", type(exc).__name__, delay)
        if await _stopped_during(_stop_on_signal(), delay):
            return None
        delay = min(delay * 2, MAX_RETRY_DELAY)


async def serving_instance(settings: Settings) -> Settings:
    """The settings of the instance this worker serves: the hub's own for the default instance."""
    if not settings.instance:
        return settings
    conn = await asyncpg.connect(settings.dsn, timeout=5)
    try:
        found = await instances.get(conn, settings, settings.instance)
    finally:
        await conn.close()
    if found is None:
        raise SystemExit(f"no instance named '{settings.instance}' (eventplane instance list)")
    log.info("serving instance %s", found.name)
    return instances.settings_for(settings, found)


async def _run_workers(settings: Settings, state: WorkerState) -> None:
    delay = 1.0
    while True:
        worker = build_worker(settings, state)
        started = time.monotonic()
        try:
            await worker.async_run()
            return
        except asyncio.CancelledError:  # arq's signal handler cancels its main task
            return
        except TRANSIENT_ERRORS as exc:
            log.warning("lost Redis or Postgres (%s); starting the worker again in %.0f s", type(exc).__name__, delay)
        finally:
            stop = _stop_on_signal()
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await worker.close()
            if worker.pool is not None:  # close() stops before closing it when Redis is gone
                await worker.pool.close(close_connection_pool=True)
        if time.monotonic() - started > HEALTHY_AFTER:
            delay = 1.0
        if await _stopped_during(stop, delay):
            return
        delay = min(delay * 2, MAX_RETRY_DELAY)


async def _stopped_during(stop: asyncio.Event, delay: float) -> bool:
    """Wait `delay` seconds before trying again; True when SIGINT/SIGTERM arrived meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
    return stop.is_set()


def _stop_on_signal() -> asyncio.Event:
    """Until the next arq Worker installs its own handlers, SIGINT and SIGTERM set this event: the handlers
    of the Worker that ended would drop them, and the process would not stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
