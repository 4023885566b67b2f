"""The queue between the edge and the workers: arq jobs of event batches in Redis.

A job carries a list of rows (see `Row`). The edge enqueues with one Lua script call (arq's own
`enqueue_job` takes three, and one dedicated connection each), writing arq's job format with arq's
`serialize_job`, so arq workers run the jobs unchanged. Beside each job the edge records its event count,
so the depth of the queue in events is one GET; the worker removes the record after its commit, once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from arq.constants import job_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

STORE_EVENTS = "store_events"
# A queued batch outlives any Postgres outage we plan for; arq's default (1 day) is too short to promise.
JOB_EXPIRES_MS = 7 * 24 * 3600 * 1000

# (workspace_id, message_id, event_type, user_id, anonymous_id, value, properties JSON text,
#  timestamp, sent_at, received_at). timestamp and sent_at are the client's (UTC-aware, or None);
#  received_at is the edge's clock in microseconds since the Unix epoch.
Row = tuple[str, str, str, str | None, str | None, float | None, bytes, dt.datetime | None, dt.datetime | None, int]
RECEIVED_AT = 9


def _enc_hook(obj: Any) -> Any:
    # arq stores failed jobs' exceptions in results; keep them readable instead of failing to encode.
    return repr(obj)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.msgpack.Decoder()


def serialize(obj: Any) -> bytes:
    """arq job serializer: msgpack (never pickle)."""
    return _encoder.encode(obj)


def deserialize(data: bytes) -> Any:
    """arq job deserializer. The rows of a batch come back as `Rows`, whose repr is short: arq formats
    repr(args) of every job it starts, and that of 5,000 rows cost the worker a sixth of its time."""
    job = _decoder.decode(data)
    if isinstance(job, dict) and job.get("f") == STORE_EVENTS and job.get("a"):
        job["a"] = [Rows(job["a"][0]), *job["a"][1:]]
    return job


class Rows(list[Any]):
    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


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

    @property
    def config_channel(self) -> str:
        """Carries a workspace id after any flag or experiment change committed (eventplane/flagconfig.py)."""
        return f"{self.prefix}flags:config"

    def api_key(self, key_hash: str) -> str:
        return f"{self.prefix}apikey:{key_hash}"

    @property
    def key_last_used(self) -> str:
        return f"{self.prefix}apikeys:last_used"

    def flag_config(self, workspace_id: str) -> str:
        """A workspace's config document as the edges cache it: a hash {v: version, b: body}."""
        return f"{self.prefix}flagconfig:{workspace_id}"

    def sticky(self, workspace_id: str, experiment: str, salt: str, bucket_version: int) -> str:
        """Recorded assignments of one experiment at one bucket version: a hash unit -> variant."""
        return f"{self.prefix}sticky:{workspace_id}:{experiment}:{salt}:{bucket_version}"


Batch = tuple[list[Row], list[str]]  # rows, and the ids of the requests they came in


class Lua:
    """A Lua script sent by hash (EVALSHA), and whole only when the server does not know it yet."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: Redis, keys: list[str], args: list[bytes | str | int]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc, arg-type]
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)  # type: ignore[misc, arg-type]


# One round trip and one command (redis-py's per-command overhead dominated the MULTI/EXEC version),
# run atomically: for each job, arq's job key, its place in arq's queue and its event count beside it;
# then the queue depth in events.
ENQUEUE = Lua(
    """
local now, ttl, total = ARGV[1], ARGV[2], 0
for i = 4, #KEYS do
  local a = 3 + (i - 4) * 3
  redis.call('SET', KEYS[i], ARGV[a], 'PX', ttl)
  redis.call('ZADD', KEYS[1], now, ARGV[a + 1])
  redis.call('HSET', KEYS[2], ARGV[a + 1], ARGV[a + 2])
  total = total + tonumber(ARGV[a + 2])
end
redis.call('INCRBY', KEYS[3], total)
return total
"""
)


async def enqueue(redis: Redis, keys: Keys, batches: list[Batch]) -> list[str]:
    """Put each batch in the queue as one job, all in one atomic script call. Returns the job ids.

    The caller acknowledges the events only after this returns; on an error it answers 503, and a client
    retry of events that were queued after all is deduplicated by the workers.
    """
    now_ms = int(time.time() * 1000)
    job_ids: list[str] = []
    job_keys: list[str] = []
    args: list[bytes | str | int] = [now_ms, JOB_EXPIRES_MS]
    for rows, request_ids in batches:
        job_id = uuid.uuid4().hex
        job_ids.append(job_id)
        job_keys.append(job_key_prefix + job_id)
        kwargs = {"request_ids": request_ids}
        args += [serialize_job(STORE_EVENTS, (rows,), kwargs, None, now_ms, serializer=serialize), job_id, len(rows)]
    await ENQUEUE(redis, [keys.queue, keys.pending, keys.queued_events, *job_keys], args)
    return job_ids


DONE = Lua(
    """
local n = redis.call('HGET', KEYS[1], ARGV[1])
if n then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('DECRBY', KEYS[2], n)
end
return n
"""
)


async def mark_stored(redis: Redis, keys: Keys, job_id: str) -> None:
    """Remove a stored job from the queue depth. Idempotent: a job run twice decrements once."""
    await DONE(redis, [keys.pending, keys.queued_events], [job_id])


async def depth(redis: Redis, keys: Keys) -> tuple[int, float]:
    """Events queued and not yet stored, and the age in seconds of the oldest queued job."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.queued_events)
        pipe.zrange(keys.queue, 0, 0, withscores=True)
        raw, oldest = await pipe.execute()
    age = max(0.0, time.time() - oldest[0][1] / 1000) if oldest else 0.0
    return int(raw or 0), age
