"""The queue between the edge and the workers: arq jobs of event batches in Redis.

A job carries a list of rows (see `Row`). The edge enqueues with one MULTI/EXEC round trip (arq's own
`enqueue_job` takes three, and one dedicated connection each), writing arq's job format with arq's
`serialize_job`, so arq workers run the jobs unchanged. Beside each job the edge records its event count,
so the depth of the queue in events is one GET; the worker removes the record after its commit, once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from arq.constants import job_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import Redis

STORE_EVENTS = "store_events"
# A queued batch outlives any Postgres outage we plan for; arq's default (1 day) is too short to promise.
JOB_EXPIRES_MS = 7 * 24 * 3600 * 1000

# (workspace_id, message_id, event_type, user_id, anonymous_id, value, properties JSON, timestamp µs,
#  received_at µs). Timestamps are microseconds since the Unix epoch, UTC.
Row = tuple[str, str, str, str | None, str | None, float | None, bytes, int, int]


def _enc_hook(obj: Any) -> Any:
    # arq stores failed jobs' exceptions in results; keep them readable instead of failing to encode.
    return repr(obj)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.msgpack.Decoder()


def serialize(obj: Any) -> bytes:
    """arq job serializer: msgpack (never pickle)."""
    return _encoder.encode(obj)


def deserialize(data: bytes) -> Any:
    return _decoder.decode(data)


@dataclass(frozen=True)
class Keys:
    """Every Redis key EventPlane uses, under one prefix (tests use their own prefix)."""

    prefix: str

    @property
    def queue(self) -> str:
        return f"{self.prefix}queue"

    @property
    def pending(self) -> str:
        return f"{self.prefix}pending"

    @property
    def queued_events(self) -> str:
        return f"{self.prefix}queued_events"

    @property
    def key_channel(self) -> str:
        return f"{self.prefix}apikeys:invalidate"

    def api_key(self, key_hash: str) -> str:
        return f"{self.prefix}apikey:{key_hash}"

    @property
    def key_last_used(self) -> str:
        return f"{self.prefix}apikeys:last_used"


Batch = tuple[list[Row], list[str]]  # rows, and the ids of the requests they came in


async def enqueue(redis: Redis, keys: Keys, batches: list[Batch]) -> list[str]:
    """Put each batch in the queue as one job, all in one MULTI/EXEC. Returns the job ids.

    Either every batch is queued or (on error) none is; the caller acknowledges only after this returns.
    """
    now_ms = int(time.time() * 1000)
    job_ids = []
    async with redis.pipeline(transaction=True) as pipe:
        for rows, request_ids in batches:
            job_id = uuid.uuid4().hex
            job_ids.append(job_id)
            kwargs = {"request_ids": request_ids}
            payload = serialize_job(STORE_EVENTS, (rows,), kwargs, None, now_ms, serializer=serialize)
            pipe.psetex(job_key_prefix + job_id, JOB_EXPIRES_MS, payload)
            pipe.zadd(keys.queue, {job_id: now_ms})
            pipe.hset(keys.pending, job_id, str(len(rows)))
            pipe.incrby(keys.queued_events, len(rows))
        await pipe.execute()
    return job_ids


_DONE_SCRIPT = """
local n = redis.call('HGET', KEYS[1], ARGV[1])
if n then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('DECRBY', KEYS[2], n)
end
return n
"""


async def mark_stored(redis: Redis, keys: Keys, job_id: str) -> None:
    """Remove a stored job from the queue depth. Idempotent: a job run twice decrements once."""
    await redis.eval(_DONE_SCRIPT, 2, keys.pending, keys.queued_events, job_id)  # type: ignore[misc]


async def depth(redis: Redis, keys: Keys) -> tuple[int, float]:
    """Events queued and not yet stored, and the age in seconds of the oldest queued job."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.queued_events)
        pipe.zrange(keys.queue, 0, 0, withscores=True)
        raw, oldest = await pipe.execute()
    age = max(0.0, time.time() - oldest[0][1] / 1000) if oldest else 0.0
    return int(raw or 0), age


async def queued_events(redis: Redis, keys: Keys) -> int:
    raw = await redis.get(keys.queued_events)
    return int(raw or 0)
