"""Many queued jobs, one transaction: the committer (the worker's batch writer: add, and flush on size or age).

The edge queues small jobs under light load (it flushes at once, for latency). Each job hands its rows
to `add` and waits; the writer commits whatever has gathered when it reaches `max_rows` or `max_age`,
whichever comes first, and a fresh buffer starts. A job returns, and arq acknowledges it, only after
the transaction holding its rows has committed; if the transaction fails, every job in it gets the error
and is retried by arq, which the ledger makes harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventplane import tasks
from eventplane.errors import TRANSIENT_ERRORS
from eventplane.queue import RECEIVED_AT
from workers.metrics import WorkerMetrics
from workers.store import Outcome, Store

log = logging.getLogger("eventplane.workers.commits")
CLOSE_SECONDS = 5.0  # for the run loop to stop


@dataclass
class Pending:
    rows: Sequence[Sequence[Any]]
    job_id: str
    request_ids: Sequence[str]
    future: asyncio.Future[None]


class Committer:
    def __init__(
        self, writer: Store, metrics: WorkerMetrics, *, max_rows: int, max_age: float, concurrency: int
    ) -> None:
        self._writer = writer
        self._metrics = metrics
        self._max_rows = max_rows
        self._max_age = max_age
        self._pending: list[Pending] = []
        self._rows = 0
        self._first_at = 0.0
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._flushes: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            await tasks.stop([self._task], CLOSE_SECONDS, log)  # a plain cancel can be lost: eventplane/tasks.py
        if self._pending:
            await self._slots.acquire()
            self._start_commit()
        await asyncio.gather(*self._flushes, return_exceptions=True)

    async def add(self, rows: Sequence[Sequence[Any]], job_id: str = "", request_ids: Sequence[str] = ()) -> None:
        """Returns once `rows` are committed; raises what the store raised otherwise."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._pending:
            self._first_at = time.monotonic()
        self._pending.append(Pending(rows, job_id, request_ids, future))
        self._rows += len(rows)
        self._wakeup.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending and self._rows < self._max_rows:
                wait = self._first_at + self._max_age - time.monotonic()
                if wait <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                self._wakeup.clear()
            if self._pending:
                await self._slots.acquire()  # rows that arrive meanwhile join this commit
                self._start_commit()

    def _start_commit(self) -> None:
        pending, self._pending, self._rows = self._pending, [], 0
        task = asyncio.create_task(self._commit(pending))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _commit(self, pending: list[Pending]) -> None:
        try:
            await self._store(pending, isolate=len(pending) > 1)
        finally:
            self._slots.release()

    async def _store(self, pending: list[Pending], *, isolate: bool) -> None:
        rows = [row for p in pending for row in p.rows]
        started = time.monotonic()
        try:
            outcome = await self._writer.store(rows)
        except BaseException as exc:  # handed to every waiting job, which decides retry or not
            self._metrics.failed_commits.inc()
            if isolate and isinstance(exc, Exception) and not isinstance(exc, TRANSIENT_ERRORS):
                # An unexpected error is one job's (a bug in its rows): store each job alone, so that
                # only that one fails, is counted and, in the end, parked; not its batch-mates.
                log.warning("commit of %d jobs failed (%r); storing them one by one", len(pending), exc)
                for p in pending:
                    await self._store([p], isolate=False)
                return
            for p in pending:
                if not p.future.done():
                    p.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for p in pending:
                if not p.future.done():
                    p.future.set_result(None)
            self._record(pending, len(rows), outcome, time.monotonic() - started)

    def _record(self, pending: list[Pending], rows: int, outcome: Outcome, seconds: float) -> None:
        m = self._metrics
        m.commit_rows.observe(rows)
        m.commit_seconds.observe(seconds)
        m.stored.inc(outcome.stored)
        m.duplicates.inc(rows - outcome.stored - outcome.dead - outcome.refused)
        m.refused.inc(outcome.refused)
        m.dead_letters.inc(outcome.dead)
        now_us = time.time_ns() // 1000
        for p in pending:
            if p.rows:
                m.lag_seconds.observe(max(0, now_us - p.rows[0][RECEIVED_AT]) / 1e6)
        log.info(
            "committed",
            extra={
                "rows": rows, "stored": outcome.stored, "dead_letters": outcome.dead, "refused": outcome.refused,
                "seconds": round(seconds, 4),
                "jobs": [p.job_id for p in pending], "request_ids": [r for p in pending for r in p.request_ids],
            },
        )  # fmt: skip
