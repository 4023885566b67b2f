"""The queue between the edge and the workers: arq jobs of event batches in Redis.

A job carries a list of rows (see `Row`). The edge enqueues with one Lua script call (arq's own
`enqueue_job` takes three, and one dedicated connection each), writing arq's job format with arq's
`serialize_job`, so arq workers run the jobs unchanged. Beside each job the edge records its event count,
so the depth of the queue in events is one GET; the worker removes the record after its commit, once,
and its maintenance job removes those of jobs arq ended without running our code (`reconcile_depth`).
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

from eventplane.redis_names import RedisNames

STORE_EVENTS = "store_events"
# A queued batch outlives any Postgres outage we plan for; arq's default (1 day) is too short to promise.
JOB_EXPIRES_MS = 7 * 24 * 3600 * 1000

# (workspace_id, message_id, event_type, user_id, anonymous_id, value, properties JSON text,
#  timestamp, sent_at, received_at, context JSON text or None). timestamp and sent_at are the client's
#  (UTC-aware, or None); received_at is the edge's clock in microseconds since the Unix epoch. Rows
#  queued by an edge older than `context` have 10 fields; workers read them as context None.
Row = tuple[
    str, str, str, str | None, str | None, float | None, bytes, dt.datetime | None, dt.datetime | None, int,
    bytes | None,
]  # fmt: skip
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


JobRows = tuple[list[Row], list[str]]  # rows, and the ids of the requests they came in


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
# run atomically. For each group (one workspace's requests): take its events from the workspace's token
# bucket (rate 0: no bucket), and only if they all fit, for each job of the group arq's job key, its place
# in arq's queue and its event count beside it; then the queue depth in events. Returns, per group, "0"
# when queued or the seconds until its events would fit. The clock is Redis's, the same for every edge.
ENQUEUE = Lua(
    """
local nowms, ttl, ngroups = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local k, a, total, out = 4, 4, 0, {}
for g = 1, ngroups do
  local bucket, rate, burst = KEYS[k], tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local cost, njobs = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  k, a = k + 1, a + 4
  local wait = 0
  if rate > 0 then
    local state = redis.call('HMGET', bucket, 'tokens', 'at')
    local tokens = tonumber(state[1]) or burst
    local at = tonumber(state[2]) or now
    tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
    if tokens >= cost then
      redis.call('HSET', bucket, 'tokens', tostring(tokens - cost), 'at', tostring(now))
      redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 1000)
    else
      wait = (cost - tokens) / rate
    end
  end
  if wait == 0 then
    for j = 1, njobs do
      redis.call('SET', KEYS[k], ARGV[a], 'PX', ttl)
      redis.call('ZADD', KEYS[1], nowms, ARGV[a + 1])
      redis.call('HSET', KEYS[2], ARGV[a + 1], ARGV[a + 2])
      total = total + tonumber(ARGV[a + 2])
      k, a = k + 1, a + 3
    end
  else
    k, a = k + njobs, a + 3 * njobs
  end
  out[g] = tostring(wait)
end
if total > 0 then
  redis.call('INCRBY', KEYS[3], total)
end
return out
"""
)


@dataclass
class Group:
    """Jobs that are queued together or not at all: one workspace's requests of one flush."""

    bucket: str  # RedisNames.rate_bucket(workspace_id)
    per_second: float  # 0: no limit
    burst: float
    batches: list[JobRows]


async def enqueue_groups(redis: Redis, keys: RedisNames, groups: list[Group]) -> list[tuple[list[str], float]]:
    """Queue each group whose events fit its workspace's bucket, all in one atomic script call.

    Returns per group its job ids and 0.0, or no ids and the seconds until its events would fit. The
    caller acknowledges the events only after this returns; on an error it answers 503, and a client
    retry of events that were queued after all is deduplicated by the workers.
    """
    now_ms = int(time.time() * 1000)
    script_keys: list[str] = [keys.queue, keys.pending, keys.queued_events]
    args: list[bytes | str | int] = [now_ms, JOB_EXPIRES_MS, len(groups)]
    ids: list[list[str]] = []
    for group in groups:
        cost = sum(len(rows) for rows, _ in group.batches)
        script_keys.append(group.bucket)
        args += [repr(group.per_second), repr(group.burst), cost, len(group.batches)]
        ids.append([])
        for rows, request_ids in group.batches:
            job_id = uuid.uuid4().hex
            ids[-1].append(job_id)
            script_keys.append(job_key_prefix + job_id)
            kwargs = {"request_ids": request_ids}
            args += [
                serialize_job(STORE_EVENTS, (rows,), kwargs, None, now_ms, serializer=serialize),
                job_id,
                len(rows),
            ]
    waits = await ENQUEUE(redis, script_keys, args)
    return [(job_ids, 0.0) if float(w) == 0 else ([], float(w)) for job_ids, w in zip(ids, waits, strict=True)]


async def enqueue(redis: Redis, keys: RedisNames, batches: list[JobRows]) -> list[str]:
    """Put each batch in the queue as one job, without any rate limit. Returns the job ids."""
    [(job_ids, _)] = await enqueue_groups(redis, keys, [Group(keys.rate_bucket("-"), 0.0, 0.0, batches)])
    return job_ids


DONE = Lua(
    """
local n = redis.call('HGET', KEYS[1], ARGV[1])
if n then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('DECRBY', KEYS[2], n)
end
redis.call('HDEL', KEYS[3], ARGV[1])
return n
"""
)


async def mark_stored(redis: Redis, keys: RedisNames, job_id: str) -> None:
    """Remove a stored job from the queue depth. Idempotent: a job run twice decrements once."""
    await DONE(redis, [keys.pending, keys.queued_events, keys.failures], [job_id])


async def is_held(redis: Redis, keys: RedisNames, workspace_id: str) -> bool:
    """Whether jobs of this workspace must wait: it is being moved onto this instance and its history is
    not copied yet (eventplane/moves.py). Every job of the edge holds the rows of one workspace."""
    return bool(await redis.sismember(keys.held, workspace_id))  # type: ignore[misc]


async def count_failure(redis: Redis, keys: RedisNames, job_id: str) -> int:
    """Record one unexpected failure of a job; returns how many it has had (mark_stored forgets them)."""
    n: int = await redis.hincrby(keys.failures, job_id, 1)  # type: ignore[misc]
    return n


# Each id whose arq job key is gone: arq ended that job without our code (its own timeout, max tries,
# the key's expiry), so it will never run and its events are not queued any more. Remove its count.
# Race-free: ENQUEUE writes a job key and its count in one atomic script, so a count without a job key
# is never a job being enqueued; DONE and this script both remove a count only with HGET + HDEL in one
# script, so a job is subtracted once whichever comes first. Each script keeps the depth equal to the
# sum of the counts, so removing the stale counts is enough to make the depth true again.
RECONCILE = Lua(
    """
local removed = 0
for i = 4, #KEYS do
  local id = ARGV[i - 3]
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local n = redis.call('HGET', KEYS[1], id)
    if n then
      redis.call('HDEL', KEYS[1], id)
      redis.call('DECRBY', KEYS[2], n)
      removed = removed + tonumber(n)
    end
    redis.call('HDEL', KEYS[3], id)
  end
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SET', KEYS[2], 0)
end
return removed
"""
)


async def reconcile_depth(redis: Redis, keys: RedisNames, chunk: int = 500) -> int:
    """Drop the counts of jobs that no longer exist; returns the events removed from the depth.

    Walks the counts with HSCAN, a chunk per script call, so Redis is never blocked for long however
    many jobs are queued. A job enqueued during the walk may be missed; it exists, so that is right.
    """
    removed, cursor = 0, 0
    while True:
        cursor, counts = await redis.hscan(keys.pending, cursor, count=chunk)
        ids = [i.decode() for i in counts]
        if ids or cursor == 0:
            job_keys = [job_key_prefix + i for i in ids]
            removed += int(await RECONCILE(redis, [keys.pending, keys.queued_events, keys.failures, *job_keys], ids))
        if cursor == 0:
            return removed


async def depth(redis: Redis, keys: RedisNames) -> tuple[int, float]:
    """Events queued and not yet stored, and the age in seconds of the oldest queued job."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.queued_events)
        pipe.zrange(keys.queue, 0, 0, withscores=True)
        raw, oldest = await pipe.execute()
    age = max(0.0, time.time() - oldest[0][1] / 1000) if oldest else 0.0
    return int(raw or 0), age
