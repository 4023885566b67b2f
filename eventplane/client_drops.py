"""Events SDKs report they dropped (client reports), counted per workspace, UTC day and reason.

The edge never writes Postgres: it adds a report to a Redis hash per workspace and day, once per report
id (a retried batch carries the same id), in one script call. A worker folds those hashes into
`client_drops_daily` twice a minute. The hashes hold running totals for their day, and the fold writes
the greater of the stored and the Redis total, so a fold that runs twice, or dies before it finishes,
counts nothing twice and loses nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import asyncpg
from redis.asyncio import Redis

from eventplane.queue import Lua
from eventplane.redis_names import RedisNames

# Report ids are remembered this long: SDK retries of one batch end well within it.
REPORT_ID_TTL_SECONDS = 7 * 24 * 3600
# A day's hash is kept (and folded again) this long after its last report: a worker outage up to this
# long loses nothing; Postgres keeps the count for good.
DAY_TTL_SECONDS = 7 * 24 * 3600
# Days whose totals may still grow (an edge's clock a little ahead of a worker's): folded every time.
OPEN_DAYS = 2


def report_key(keys: RedisNames, workspace_id: str, report_id: str) -> str:
    return f"{keys.prefix}client_report:{workspace_id}:{report_id}"


def day_key(keys: RedisNames, workspace_id: str, day: dt.date) -> str:
    return f"{keys.prefix}client_drops:{workspace_id}:{day.isoformat()}"


def pending_key(keys: RedisNames) -> str:
    """The set of "workspace_id|day" whose hashes the fold reads."""
    return f"{keys.prefix}client_drops:pending"


# KEYS: the report id's marker, the day's hash, the pending set. ARGV: ttl, the pending member, then
# reason, count pairs. Returns 1 when the report was new (and counted), 0 for a repeat.
_RECORD = Lua(
    """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""
)


async def record(
    redis: Redis, keys: RedisNames, workspace_id: str, report_id: str, dropped: Mapping[str, int], day: dt.date
) -> bool:
    """Count one report; False when this report id was counted before (a retry)."""
    args: list[bytes | str | int] = [DAY_TTL_SECONDS, f"{workspace_id}|{day.isoformat()}"]
    for reason, count in dropped.items():
        if count:
            args += [reason, count]
    marker, hash_key = report_key(keys, workspace_id, report_id), day_key(keys, workspace_id, day)
    return bool(await _RECORD(redis, [marker, hash_key, pending_key(keys)], args))


_UPSERT = """
INSERT INTO client_drops_daily (workspace_id, day, reason, dropped)
SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::bigint[])
ON CONFLICT (workspace_id, day, reason) DO UPDATE SET dropped = greatest(client_drops_daily.dropped, excluded.dropped)
"""


async def fold(redis: Redis, keys: RedisNames, pool: asyncpg.Pool, today: dt.date | None = None) -> int:
    """Write the Redis totals into client_drops_daily; returns how many (workspace, day) were read."""
    members = sorted(m.decode() for m in await redis.smembers(pending_key(keys)))  # type: ignore[misc]
    if not members:
        return 0
    parsed = [(m, *m.split("|", 1)) for m in members]
    async with redis.pipeline(transaction=False) as pipe:
        for _, workspace_id, day in parsed:
            pipe.hgetall(day_key(keys, workspace_id, dt.date.fromisoformat(day)))
        totals: list[dict[bytes, bytes]] = await pipe.execute()
    columns: tuple[list[str], list[dt.date], list[str], list[int]] = ([], [], [], [])
    for (_, workspace_id, day), counts in zip(parsed, totals, strict=True):
        for reason, count in counts.items():
            columns[0].append(workspace_id)
            columns[1].append(dt.date.fromisoformat(day))
            columns[2].append(reason.decode())
            columns[3].append(int(count))
    if columns[0]:
        await pool.execute(_UPSERT, *columns)
    # Days that can no longer grow leave the pending set once their totals are in Postgres.
    today = today or dt.datetime.now(dt.UTC).date()
    closed = [m for m, _, day in parsed if (today - dt.date.fromisoformat(day)).days >= OPEN_DAYS]
    if closed:
        await redis.srem(pending_key(keys), *closed)  # type: ignore[misc]
    return len(parsed)
