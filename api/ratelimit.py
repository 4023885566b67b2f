"""Fixed-window counters in Redis: sign-ups and login attempts per address, login attempts per (email,
address), invitations per workspace."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from eventplane.errors import ApiError


async def hit(redis: Redis, key: str, limit: int, window: int) -> None:
    """Count one attempt under `key`; raise 429 RATE_LIMITED (with Retry-After) past `limit` per `window` s."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        pipe.ttl(key)
        count, _, ttl = await pipe.execute()
    if count > limit:
        retry = max(int(ttl), 1)
        raise ApiError(429, "RATE_LIMITED", f"Too many attempts; retry in {retry} s",
                       {"limit": limit, "window_seconds": window}, {"retry-after": str(retry)})  # fmt: skip


def bucket(prefix: str, kind: str, value: str) -> str:
    # Hashed so that emails and addresses never appear in Redis key names.
    return f"{prefix}rl:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"
