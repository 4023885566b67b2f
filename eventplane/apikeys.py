"""What a key grants, where it is cached, and how a change reaches every edge within a second.

Source of truth: Postgres. Shared cache: one Redis string per key hash. Each edge process keeps its own
in-process cache and drops entries when a hash is published on the invalidation channel. Whoever
changes a key (API, CLI) writes the new state to Redis *then* publishes, so an edge that refills from
Redis after the message sees the new state; edges fill Redis with SET NX, so a slow edge's stale read
of Postgres cannot overwrite a newer state written by the API.
"""

from __future__ import annotations

import hmac

import asyncpg
import msgspec
from redis.asyncio import Redis

from eventplane import scopes
from eventplane.db import Conn
from eventplane.queue import Keys

REDIS_TTL_SECONDS = 3600
REDIS_NEGATIVE_TTL_SECONDS = 60


class KeyInfo(msgspec.Struct, frozen=True, array_like=True):
    """A key's grants as the edge needs them. `found=False` caches "no such key"."""

    found: bool
    key_id: str = ""
    workspace_id: str = ""
    scopes: frozenset[str] = frozenset()
    active: bool = False
    expires_at: float | None = None  # epoch seconds
    workspace_active: bool = False

    def usable(self, now: float) -> bool:
        return self.found and self.active and (self.expires_at is None or now < self.expires_at)


NOT_FOUND = KeyInfo(found=False)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KeyInfo)

_LOOKUP = """
SELECT k.id::text, k.workspace_id::text, k.key_hash, k.scopes, k.is_active AND k.revoked_at IS NULL,
       extract(epoch FROM k.expires_at)::float8, w.is_active
FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
WHERE k.key_hash = $1
"""


async def load(conn: asyncpg.Pool | Conn, key_hash: str) -> KeyInfo:
    """Read a key's grants from Postgres (NOT_FOUND when there is no such key)."""
    row = await conn.fetchrow(_LOOKUP, key_hash)
    # The index found the row by hash; compare the hash in constant time all the same.
    if row is None or not hmac.compare_digest(row[2], key_hash):
        return NOT_FOUND
    return KeyInfo(
        found=True,
        key_id=row[0],
        workspace_id=row[1],
        scopes=scopes.expand(row[3]),
        active=row[4],
        expires_at=row[5],
        workspace_active=row[6],
    )


def encode(info: KeyInfo) -> bytes:
    return _encoder.encode(info)


def decode(raw: bytes) -> KeyInfo:
    return _decoder.decode(raw)


def ttl_for(info: KeyInfo) -> int:
    return REDIS_TTL_SECONDS if info.found else REDIS_NEGATIVE_TTL_SECONDS


async def publish(redis: Redis, keys: Keys, key_hash: str, info: KeyInfo) -> None:
    """Write a key's new state to the shared cache, then tell every edge to drop its copy."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.api_key(key_hash), encode(info), ex=ttl_for(info))
        pipe.publish(keys.key_channel, key_hash)
        await pipe.execute()


async def refresh(pool: asyncpg.Pool | Conn, redis: Redis, keys: Keys, key_hashes: list[str]) -> None:
    """Re-read these keys from Postgres and publish their state (after revoke, rotate, archive...)."""
    for key_hash in key_hashes:
        await publish(redis, keys, key_hash, await load(pool, key_hash))
