"""Coalesces concurrent requests' events into a few arq jobs per Redis round trip.

A request adds its rows and waits; one flusher takes everything that arrived while the previous
flush was in flight and writes it in one MULTI/EXEC. Under light load a request waits one round trip;
under heavy load batches grow by themselves (group commit). A request is answered 202 only after the
EXEC that holds its rows has succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from eventplane import queue
from eventplane.errors import ApiError, unavailable
from eventplane.queue import Keys, Row

log = logging.getLogger("eventplane.ingest.batcher")
DEPTH_POLL_SECONDS = 0.1


class Batcher:
    def __init__(self, redis: Redis, keys: Keys, *, job_max_events: int, high_water: int, retry_after: int) -> None:
        self._redis = redis
        self._keys = keys
        self._job_max_events = job_max_events
        self._high_water = high_water
        self._retry_after = retry_after
        self._pending: list[tuple[list[Row], asyncio.Future[None]]] = []
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

    async def submit(self, rows: list[Row]) -> None:
        """Returns once the rows are in Redis; raises ApiError(503) if they could not be queued."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._wakeup.set()
        await asyncio.shield(future)  # a client that hangs up does not un-queue its events

    def _take(self) -> tuple[list[list[Row]], list[asyncio.Future[None]]]:
        pending, self._pending = self._pending, []
        batches: list[list[Row]] = []
        current: list[Row] = []
        for rows, _ in pending:
            for start in range(0, len(rows), self._job_max_events):
                part = rows[start : start + self._job_max_events]
                if current and len(current) + len(part) > self._job_max_events:
                    batches.append(current)
                    current = []
                current.extend(part)
        if current:
            batches.append(current)
        return batches, [future for _, future in pending]

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        batches, futures = self._take()
        if not futures:
            return
        try:
            await queue.enqueue(self._redis, self._keys, batches)
        except (RedisError, OSError) as exc:
            log.warning("enqueue failed (%s): answering 503 to %d requests", type(exc).__name__, len(futures))
            error = unavailable("QUEUE_UNAVAILABLE", "The event queue is unreachable; retry", self._retry_after)
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            return
        for future in futures:
            if not future.done():
                future.set_result(None)

    async def watch_depth(self) -> None:
        """Keep `overloaded` current: one GET every 100 ms, not one per request."""
        while True:
            with contextlib.suppress(RedisError, OSError):
                self.depth = await queue.queued_events(self._redis, self._keys)
                self.overloaded = self.depth > self._high_water
            await asyncio.sleep(DEPTH_POLL_SECONDS)

    async def drain(self) -> None:
        """Flush whatever is still pending (at shutdown, after the server stopped taking requests)."""
        while self._pending:
            await self.flush()
