"""What a key grants, where it is cached, and how a change reaches every edge within a second.

Source of truth: Postgres. Shared cache: one Redis string per key hash. Each edge process keeps its own
in-process cache and drops entries when a hash is published on the invalidation channel. Whoever
changes a key (API, CLI) writes the new state to Redis *then* publishes, so an edge that refills from
Redis after the message sees the new state; edges fill Redis with SET NX, so a slow edge's stale read
of Postgres cannot overwrite a newer state written by the API.

Anyone who can write to Redis could otherwise mint keys, so every entry is sealed: an HMAC-SHA256 over
the key hash and the entry, under a secret the edge and the api share (EVENTPLANE_CACHE_SECRET, or one
made once in the data dir), and an expiry inside the MAC, which bounds the replay of an old entry of the
same key to REDIS_TTL_SECONDS. An entry that fails the check is ignored and the key read from Postgres.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import asyncpg
import msgspec
from redis.asyncio import Redis

from eventplane import plans, scopes
from eventplane.db import Conn
from eventplane.queue import Lua
from eventplane.redis_names import RedisNames
from eventplane.secretfile import stored_secret
from eventplane.settings import Settings

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
    plan: str = ""  # the workspace's plan (eventplane/plans.py): API access and ingestion rate
    instance: str = ""  # where the edge queues its events (eventplane/instances.py); "": the default one

    def usable(self, now: float) -> bool:
        return self.found and self.active and (self.expires_at is None or now < self.expires_at)

    @property
    def plan_limits(self) -> plans.Plan:
        return plans.get(self.plan)


NOT_FOUND = KeyInfo(found=False)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(tuple[int, KeyInfo])
MAC_BYTES = hashlib.sha256().digest_size

_LOOKUP = """
SELECT k.id::text, k.workspace_id::text, k.key_hash, k.scopes, k.is_active AND k.revoked_at IS NULL,
       extract(epoch FROM k.expires_at)::float8, w.is_active, w.plan, coalesce(w.instance, '')
FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
WHERE k.key_hash = $1
"""


def redis_keys(settings: Settings) -> RedisNames:
    """The Redis key names with the cache secret: EVENTPLANE_CACHE_SECRET, else data_dir/cache_secret."""
    secret = settings.cache_secret or stored_secret(settings.data_dir / "cache_secret")
    return RedisNames(settings.redis_prefix, secret.encode())


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
        plan=row[7],
        instance=row[8],
    )


def _mac(keys: RedisNames, key_hash: str, payload: bytes) -> bytes:
    assert keys.cache_secret, "build RedisNames with eventplane.apikeys.redis_keys(settings) to touch the key cache"
    return hmac.new(keys.cache_secret, key_hash.encode() + b"\n" + payload, hashlib.sha256).digest()


def seal(keys: RedisNames, key_hash: str, info: KeyInfo) -> bytes:
    """The shared-cache entry for this key: MAC, then [valid until (epoch s), info] as JSON."""
    payload = _encoder.encode((int(time.time()) + ttl_for(info), info))
    return _mac(keys, key_hash, payload) + payload


def unseal(keys: RedisNames, key_hash: str, raw: bytes) -> KeyInfo | None:
    """The entry's KeyInfo, or None when it was not sealed by us for this very key, or is too old."""
    mac, payload = raw[:MAC_BYTES], raw[MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(keys, key_hash, payload)):
        return None
    try:
        valid_until, info = _decoder.decode(payload)
    except msgspec.DecodeError:
        return None
    return info if time.time() <= valid_until else None


# Put our own entry in place of one that failed its check, unless someone replaced it meanwhile.
REPLACE = Lua(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return false
"""
)


def ttl_for(info: KeyInfo) -> int:
    return REDIS_TTL_SECONDS if info.found else REDIS_NEGATIVE_TTL_SECONDS


async def publish(redis: Redis, keys: RedisNames, key_hash: str, info: KeyInfo) -> None:
    """Write a key's new state to the shared cache, then tell every edge to drop its copy."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.api_key(key_hash), seal(keys, key_hash, info), ex=ttl_for(info))
        pipe.publish(keys.key_channel, key_hash)
        await pipe.execute()


async def refresh(pool: asyncpg.Pool | Conn, redis: Redis, keys: RedisNames, key_hashes: list[str]) -> None:
    """Re-read these keys from Postgres and publish their state (after revoke, rotate, archive, a plan change)."""
    states = [(key_hash, await load(pool, key_hash)) for key_hash in key_hashes]
    async with redis.pipeline(transaction=True) as pipe:
        for key_hash, info in states:  # every state first, then the messages (see the module docstring)
            pipe.set(keys.api_key(key_hash), seal(keys, key_hash, info), ex=ttl_for(info))
        for key_hash, _ in states:
            pipe.publish(keys.key_channel, key_hash)
        await pipe.execute()


async def invalidate_workspace(
    pool: asyncpg.Pool | Conn, redis: Redis, keys: RedisNames, workspace_id: str | uuid.UUID
) -> None:
    """Publish the state of every key of a workspace (after its plan, or anything its keys carry, changed)."""
    rows = await pool.fetch("SELECT key_hash FROM api_keys WHERE workspace_id = $1", workspace_id)
    await refresh(pool, redis, keys, [row[0] for row in rows])
