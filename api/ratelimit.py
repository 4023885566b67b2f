"""Fixed-window counters in Redis: sign-ups and login attempts per address, failed logins per (email,
address), invitations per workspace."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from eventplane.errors import ApiError


async def count(redis: Redis, key: str, window: int) -> tuple[int, int]:
    """Count one attempt under `key` in a window of `window` s; returns (count, seconds left)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        pipe.ttl(key)
        counted, _, ttl = await pipe.execute()
    return int(counted), int(ttl)


async def hit(redis: Redis, key: str, limit: int, window: int) -> None:
    """Count one attempt under `key`; raise 429 RATE_LIMITED (with Retry-After) past `limit` per `window` s."""
    counted, ttl = await count(redis, key, window)
    if counted > limit:
        raise limited(limit, window, ttl)


async def check(redis: Redis, key: str, limit: int, window: int) -> None:
    """Raise 429 when `limit` attempts are counted under `key` already (counting nothing)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        counted, ttl = await pipe.execute()
    if counted is not None and int(counted) >= limit:
        raise limited(limit, window, int(ttl))


def limited(limit: int, window: int, ttl: int) -> ApiError:
    retry = max(ttl, 1)
    return ApiError(429, "RATE_LIMITED", f"Too many attempts; retry in {retry} s",
                    {"limit": limit, "window_seconds": window}, {"retry-after": str(retry)})  # fmt: skip


def bucket(prefix: str, kind: str, value: str) -> str:
    # Hashed so that emails and addresses never appear in Redis key names.
    return f"{prefix}rl:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"
