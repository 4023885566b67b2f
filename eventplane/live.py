"""Newly stored events on Redis pub/sub, for the api's live streams (api/live.py).

After a commit, the worker publishes each workspace's rows of the committed jobs on that workspace's
channel (`RedisNames.live_events`) as one JSON array. It does so in a task of its own, after the job is
acknowledged, so neither the commit nor the acknowledgement waits for it; and it first asks Redis
(`PUBSUB NUMSUB`, one round trip) which of the workspaces have a stream open, so a worker encodes nothing
when nobody watches. Delivery is best effort: a lost publish loses nothing stored (the list is the
record), and a job run twice may publish its rows twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from eventplane import tasks
from eventplane.errors import TRANSIENT_ERRORS
from eventplane.redis_names import RedisNames

log = logging.getLogger("eventplane.live")
CLOSE_SECONDS = 2.0
MAX_PENDING = 100  # publishes in flight per worker; beyond, new ones are skipped (Redis is slow or gone)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_encoder = msgspec.json.Encoder()


class LiveEvent(msgspec.Struct, kw_only=True):
    message_id: str
    event_type: str
    user_id: str | None
    anonymous_id: str | None
    value: float | None
    properties: msgspec.Raw
    timestamp: dt.datetime
    received_at: dt.datetime
    context: msgspec.Raw | None


def event(row: Sequence[Any]) -> LiveEvent:
    """A queued row (eventplane.queue.Row) as the event it is stored as, with the same skew correction."""
    received = _EPOCH + dt.timedelta(microseconds=row[9])
    stamp, sent_at = row[7], row[8]
    timestamp = received if stamp is None else stamp if sent_at is None else received - (sent_at - stamp)
    context = row[10] if len(row) > 10 else None
    return LiveEvent(message_id=row[1], event_type=row[2], user_id=row[3], anonymous_id=row[4], value=row[5],
                     properties=msgspec.Raw(row[6]), timestamp=timestamp, received_at=received,
                     context=None if context is None else msgspec.Raw(context))  # fmt: skip


class LivePublisher:
    def __init__(self, redis: Redis, names: RedisNames) -> None:
        self._redis = redis
        self._names = names
        self._tasks: set[asyncio.Task[None]] = set()

    def publish(self, rows: Sequence[Sequence[Any]]) -> None:
        """Schedule the publish of committed rows; returns at once."""
        if not rows or len(self._tasks) >= MAX_PENDING:
            return
        task = asyncio.create_task(self._publish(rows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, rows: Sequence[Sequence[Any]]) -> None:
        by_workspace: dict[str, list[Sequence[Any]]] = {}
        for row in rows:
            by_workspace.setdefault(str(row[0]), []).append(row)
        channels = {self._names.live_events(w): w for w in by_workspace}
        try:
            counts = await self._redis.pubsub_numsub(*channels)
            watched = [_text(channel) for channel, n in counts if n > 0]
            if not watched:
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel in watched:
                    events = [event(r) for r in by_workspace[channels[channel]]]
                    pipe.publish(channel, _encoder.encode(events))
                await pipe.execute()
        except TRANSIENT_ERRORS as exc:
            log.warning("live publish of %d events failed: %r", len(rows), exc)
        except Exception:  # a row this code cannot encode must not end the worker's task silently
            log.exception("live publish of %d events failed", len(rows))

    async def close(self) -> None:
        """Let the publishes in flight finish (within CLOSE_SECONDS), then close the connection."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLOSE_SECONDS)
            await tasks.stop(self._tasks, CLOSE_SECONDS, log)
        await self._redis.aclose()


def _text(channel: bytes | str) -> str:
    return channel.decode() if isinstance(channel, bytes) else channel
