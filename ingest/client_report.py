"""Recording the client report a batch may carry: what the SDK dropped before sending, by reason."""

from __future__ import annotations

import asyncio
import datetime as dt

from redis.asyncio import Redis
from redis.exceptions import RedisError

from eventplane import client_drops
from eventplane.errors import unavailable
from eventplane.redis_names import RedisNames
from ingest.metrics import EdgeStats
from ingest.wire import ClientReport

RECORD_TIMEOUT = 3.0  # as the enqueue's: a Redis that does not answer gets the request a 503


class ClientReports:
    def __init__(self, redis: Redis, keys: RedisNames, stats: EdgeStats, retry_after: int) -> None:
        self._redis = redis
        self._keys = keys
        self._stats = stats
        self._retry_after = retry_after

    async def record(self, workspace_id: str, report: ClientReport, now_ns: int) -> None:
        """Count `report` once per id, after the batch's events were queued. On a Redis failure the request
        is answered 503: the SDK's retry is deduplicated, its events by message_id and the report by id."""
        day = dt.datetime.fromtimestamp(now_ns / 1e9, dt.UTC).date()
        try:
            new = await asyncio.wait_for(
                client_drops.record(self._redis, self._keys, workspace_id, str(report.id), report.dropped, day),
                RECORD_TIMEOUT,
            )
        except (RedisError, OSError, TimeoutError):
            raise unavailable("QUEUE_UNAVAILABLE", "The event queue is unreachable; retry", self._retry_after) from None
        if new:
            for reason, count in report.dropped.items():
                self._stats.client_dropped[reason] += count
