"""Coalesces concurrent requests' events into a few arq jobs per Redis round trip.

A request adds its rows and waits; a flusher takes everything that arrived while the previous flush
was in flight and writes it in one script call (`eventplane.queue.enqueue`). Under light load a request
waits one round trip; under heavy load batches grow by themselves (group commit). A request is answered
202 only after the call that holds its rows has succeeded.

Each workspace's requests of one flush form a group, queued only if the workspace's rate allows all
of them (eventplane.rates; checked inside the same script call). A refused group of several requests
is tried again request by request in the next flush, so one request is never refused for another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from eventplane import queue
from eventplane.errors import TRANSIENT_ERRORS, ApiError, unavailable
from eventplane.queue import Group, JobRows, Row
from eventplane.rates import UNLIMITED, Rate, limited
from eventplane.redis_client import raise_if_cancelled
from eventplane.redis_names import RedisNames
from ingest.metrics import EdgeMetrics

log = logging.getLogger("eventplane.ingest.batcher")
DEPTH_POLL_SECONDS = 0.1
ENQUEUE_TIMEOUT = 3.0  # a Redis that does not answer within this gets its requests a 503


@dataclass(slots=True)
class Pending:
    rows: list[Row]
    request_id: str
    future: asyncio.Future[None]
    workspace_id: str
    rate: Rate
    alone: bool = False  # in a group of its own (after its group was refused)


class Batcher:
    def __init__(
        self,
        redis: Redis,
        writers: list[Redis],
        keys: RedisNames,
        metrics: EdgeMetrics,
        *,
        job_max_events: int,
        high_water: int,
        retry_after: int,
        report_depth: bool = True,
    ) -> None:
        self._redis = redis
        self._report_depth = report_depth  # the edge's depth gauges show the default instance's queue
        # Single connections for the enqueue script, one flush in flight on each: with two, a request
        # that arrives during a flush need not wait for it to finish (h2load at 3,000 req/s on one core:
        # p50 1.74 ms with one writer, 1.3-1.5 ms with two; p99 within noise, 6-7 ms).
        self._idle: asyncio.Queue[Redis] = asyncio.Queue()
        for writer in writers:
            self._idle.put_nowait(writer)
        self._flushing: set[asyncio.Task[None]] = set()
        self._metrics = metrics
        self._keys = keys
        self._job_max_events = job_max_events
        self._high_water = high_water
        self._retry_after = retry_after
        self._pending: list[Pending] = []
        self._wakeup = asyncio.Event()
        self.overloaded = False
        self.depth = 0

    def refusal(self) -> ApiError | None:
        if self.overloaded:
            return unavailable(
                "QUEUE_FULL",
                f"The queue holds {self.depth} events, over its high-water mark; retry later",
                self._retry_after,
            )
        return None

    async def submit(self, rows: list[Row], request_id: str, workspace_id: str = "-", rate: Rate = UNLIMITED) -> None:
        """Returns once the rows are in Redis; raises ApiError (503, or 429 over the workspace's rate)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(Pending(rows, request_id, future, workspace_id, rate))
        self._wakeup.set()
        # A client that hangs up cancels only this future: its rows stay pending and are queued anyway.
        await future

    def _take(self) -> list[tuple[Group, list[Pending]]]:
        """Everything pending, grouped by workspace, each group cut into jobs of at most job_max_events rows."""
        pending, self._pending = self._pending, []
        by_workspace: dict[str, list[Pending]] = {}
        alone: list[list[Pending]] = []
        for item in pending:
            if item.alone:
                alone.append([item])
            else:
                by_workspace.setdefault(item.workspace_id, []).append(item)
        return [(self._group(items), items) for items in [*by_workspace.values(), *alone]]

    def _group(self, items: list[Pending]) -> Group:
        batches: list[JobRows] = []
        current: JobRows = ([], [])
        for item in items:
            for start in range(0, len(item.rows), self._job_max_events):
                part = item.rows[start : start + self._job_max_events]
                if current[0] and len(current[0]) + len(part) > self._job_max_events:
                    batches.append(current)
                    current = ([], [])
                current[0].extend(part)
                current[1].append(item.request_id)
        if current[0]:
            batches.append(current)
        rate = items[0].rate
        return Group(self._keys.rate_bucket(items[0].workspace_id), rate.per_second, rate.burst, batches)

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            writer = await self._idle.get()
            if not self._pending:
                self._idle.put_nowait(writer)
                continue
            task = asyncio.create_task(self._flush_on(writer))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _flush_on(self, writer: Redis) -> None:
        try:
            await self.flush(writer)
        finally:
            self._idle.put_nowait(writer)
            if self._pending:
                self._wakeup.set()

    async def flush(self, writer: Redis) -> None:
        taken = self._take()
        if not taken:
            return
        try:
            results = await asyncio.wait_for(
                queue.enqueue_groups(writer, self._keys, [group for group, _ in taken]), ENQUEUE_TIMEOUT
            )
        except TRANSIENT_ERRORS as exc:
            request_ids = [item.request_id for _, items in taken for item in items]
            log.warning("enqueue failed (%s): answering 503", type(exc).__name__, extra={"request_ids": request_ids})
            error = unavailable("QUEUE_UNAVAILABLE", "The event queue is unreachable; retry", self._retry_after)
            for _, items in taken:
                _settle(items, error)
            return
        for (group, items), (job_ids, wait) in zip(taken, results, strict=True):
            if job_ids:
                _settle(items, None)
                self._observe(group, job_ids)
            elif len(items) > 1:
                for item in items:  # judged one by one next time
                    item.alone = True
                self._pending.extend(items)
                self._wakeup.set()
            else:
                _settle(items, limited(items[0].rate, len(items[0].rows), wait))

    def _observe(self, group: Group, job_ids: list[str]) -> None:
        for job_id, (rows, request_ids) in zip(job_ids, group.batches, strict=True):
            self._metrics.flush_events.observe(len(rows))
            if log.isEnabledFor(logging.DEBUG):
                log.debug("queued", extra={"job_id": job_id, "events": len(rows), "request_ids": request_ids})

    async def watch_depth(self) -> None:
        """Keep `overloaded` current: one GET every 100 ms, not one per request."""
        stats = self._metrics.stats
        while True:
            with contextlib.suppress(*TRANSIENT_ERRORS):
                self.depth, oldest = await queue.depth(self._redis, self._keys)
                self.overloaded = self.depth > self._high_water
                if self._report_depth:
                    stats.queue_depth, stats.queue_oldest_age = self.depth, oldest
            raise_if_cancelled()
            await asyncio.sleep(DEPTH_POLL_SECONDS)

    async def drain(self) -> None:
        """Flush whatever is still pending (at shutdown, after the server stopped taking requests)."""
        await asyncio.gather(*self._flushing, return_exceptions=True)
        while self._pending:
            writer = await self._idle.get()
            try:
                await self.flush(writer)
            finally:
                self._idle.put_nowait(writer)


def _settle(items: list[Pending], error: ApiError | None) -> None:
    for item in items:
        if not item.future.done():
            if error is None:
                item.future.set_result(None)
            else:
                item.future.set_exception(error)
