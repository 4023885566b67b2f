"""API keys at the edge: where the key is read from, and the in-process cache of what keys grant.

Lookups go local dict -> Redis -> Postgres (read only). A Redis pub/sub subscription evicts local
entries the moment a key changes; while the subscription is down the local cache is bypassed, so a
missed invalidation can never keep a revoked key alive.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from eventplane import apikeys
from eventplane.apikeys import KeyInfo
from eventplane.errors import ApiError
from eventplane.queue import Keys
from ingest.asgi import Headers

log = logging.getLogger("eventplane.ingest.auth")
MAX_LOCAL_ENTRIES = 100_000
LAST_USED_FLUSH_SECONDS = 20.0  # + the worker folding every 30 s: last_used_at lags under 60 s


def extract_key(headers: Headers) -> str | None:
    """`X-API-Key: <key>`, `Authorization: Bearer <key>`, or Basic auth with the key as user name
    (how Segment- and RudderStack-style SDKs send a write key)."""
    value = headers.get(b"x-api-key")
    if value:
        return value.decode("latin-1").strip()
    auth = headers.get(b"authorization")
    if not auth:
        return None
    scheme, _, credentials = auth.decode("latin-1").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return ""
        return decoded.partition(":")[0]
    return ""


class KeyCache:
    def __init__(self, redis: Redis, pool: asyncpg.Pool, keys: Keys, ttl: float, negative_ttl: float) -> None:
        self._redis = redis
        self._pool = pool
        self._keys = keys
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._local: dict[str, tuple[KeyInfo, float]] = {}
        self._generation = 0  # bumped on every invalidation; a fill that raced one is not kept
        self._live = False  # subscribed to invalidations: only then is the local cache trusted
        self._used: set[str] = set()
        self.hits = 0
        self.misses = 0

    async def get(self, key_hash: str) -> KeyInfo:
        entry = self._local.get(key_hash)
        if entry is not None and self._live and entry[1] > time.monotonic():
            self.hits += 1
            return entry[0]
        self.misses += 1
        generation = self._generation
        info = await self._fetch(key_hash)
        if self._live and generation == self._generation:
            if len(self._local) >= MAX_LOCAL_ENTRIES:
                self._local.clear()
            ttl = self._ttl if info.found else self._negative_ttl
            self._local[key_hash] = (info, time.monotonic() + ttl)
        return info

    async def _fetch(self, key_hash: str) -> KeyInfo:
        redis_key = self._keys.api_key(key_hash)
        try:
            raw = await self._redis.get(redis_key)
            if raw is not None:
                return apikeys.decode(raw)
        except (RedisError, OSError):
            return await self._load(key_hash)  # Redis down: Postgres still answers who the key is
        info = await self._load(key_hash)
        with contextlib.suppress(RedisError, OSError):
            # NX: never overwrite a newer state the API wrote while we were reading Postgres.
            await self._redis.set(redis_key, apikeys.encode(info), ex=apikeys.ttl_for(info), nx=True)
        return info

    async def _load(self, key_hash: str) -> KeyInfo:
        try:
            return await apikeys.load(self._pool, key_hash)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            log.warning("key lookup failed: %s", type(exc).__name__)
            raise ApiError(
                503,
                "AUTH_UNAVAILABLE",
                "Cannot check API keys right now; retry shortly",
                None,
                {"retry-after": "5"},
            ) from None

    def touch(self, key_id: str) -> None:
        self._used.add(key_id)

    async def listen(self) -> None:
        """Follow the invalidation channel forever, resubscribing (and distrusting the cache) on errors."""
        backoff = 0.1
        task = asyncio.current_task()
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._keys.key_channel)
                self._invalidate_all()
                self._live = True
                backoff = 0.1
                while True:
                    if task is not None and task.cancelling():
                        raise asyncio.CancelledError  # redis-py swallowed our cancellation: stop all the same
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._local.pop(message["data"].decode(), None)
                        self._generation += 1
            except (RedisError, OSError) as exc:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None  # ... or reported it as a connection error
                if self._live:
                    log.warning("key invalidation channel lost (%s); bypassing local cache", type(exc).__name__)
                self._live = False
                self._invalidate_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _invalidate_all(self) -> None:
        self._local.clear()
        self._generation += 1

    async def flush_last_used(self) -> None:
        """Every 30 s, hand the ids of keys used since to Redis; a worker folds them into Postgres."""
        while True:
            await asyncio.sleep(LAST_USED_FLUSH_SECONDS)
            await self.write_last_used()

    async def write_last_used(self) -> None:
        used, self._used = self._used, set()
        if not used:
            return
        now = str(int(time.time()))
        try:
            await self._redis.hset(self._keys.key_last_used, mapping=dict.fromkeys(used, now))  # type: ignore[misc]
        except (RedisError, OSError):
            self._used |= used  # try again next time
