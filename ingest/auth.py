"""API keys at the edge: where the key is read from, and the in-process cache of what keys grant.

Lookups go local dict -> Redis -> Postgres (read only). A Redis pub/sub subscription evicts local
entries the moment a key changes; while the subscription is down the local cache is bypassed, so a
missed invalidation can never keep a revoked key alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
from redis.asyncio import Redis

from eventplane import apikeys, keyauth
from eventplane.apikeys import KeyInfo
from eventplane.errors import TRANSIENT_ERRORS, ApiError
from eventplane.redis_client import raise_if_cancelled
from eventplane.redis_names import RedisNames
from ingest.asgi import Headers

log = logging.getLogger("eventplane.ingest.auth")
MAX_LOCAL_ENTRIES = 100_000
# Postgres cannot answer: any Postgres error, not only the transient ones, means 503, never a 500.
LOOKUP_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, asyncpg.PostgresError)
LAST_USED_FLUSH_SECONDS = 20.0  # + the worker folding every 30 s: last_used_at lags under 60 s


def extract_key(headers: Headers) -> str | None:
    """The credential, by the core's rules (eventplane.keyauth.extract)."""
    x_api_key, authorization = headers.get(b"x-api-key"), headers.get(b"authorization")
    return keyauth.extract(
        x_api_key.decode("latin-1") if x_api_key else None,
        authorization.decode("latin-1") if authorization else None,
    )


class KeyCache:
    def __init__(self, redis: Redis, pool: asyncpg.Pool, keys: RedisNames, ttl: float, negative_ttl: float) -> None:
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
        self.refused_entries = 0  # shared-cache entries that failed their MAC (forged, tampered, stale)

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
        except TRANSIENT_ERRORS:
            return await self._load(key_hash)  # Redis down: Postgres still answers who the key is
        if raw is not None:
            cached = apikeys.unseal(self._keys, key_hash, raw)
            if cached is not None:
                return cached
            self.refused_entries += 1
            log.warning("a key-cache entry in Redis failed its check (forged, tampered or stale); using Postgres")
        info = await self._load(key_hash)
        sealed = apikeys.seal(self._keys, key_hash, info)
        with contextlib.suppress(*TRANSIENT_ERRORS):
            if raw is None:
                # NX: never overwrite a newer state the API wrote while we were reading Postgres.
                await self._redis.set(redis_key, sealed, ex=apikeys.ttl_for(info), nx=True)
            else:
                await apikeys.REPLACE(self._redis, [redis_key], [raw, sealed, apikeys.ttl_for(info)])
        return info

    async def _load(self, key_hash: str) -> KeyInfo:
        try:
            return await apikeys.load(self._pool, key_hash)
        except LOOKUP_ERRORS as exc:
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
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._keys.key_channel)
                self._invalidate_all()
                self._live = True
                backoff = 0.1
                while True:
                    raise_if_cancelled()  # redis-py may also swallow a cancellation without raising anything
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._local.pop(message["data"].decode(), None)
                        self._generation += 1
            except TRANSIENT_ERRORS as exc:
                raise_if_cancelled()
                if self._live:
                    log.warning("key invalidation channel lost (%s); bypassing local cache", type(exc).__name__)
                self._live = False
                self._invalidate_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _invalidate_all(self) -> None:
        self._local.clear()
        self._generation += 1

    async def flush_last_used(self) -> None:
        """Every 20 s, hand the ids of keys used since to Redis; a worker folds them into Postgres."""
        while True:
            await asyncio.sleep(LAST_USED_FLUSH_SECONDS)
            await self.write_last_used()
            raise_if_cancelled()

    async def write_last_used(self) -> None:
        used, self._used = self._used, set()
        if not used:
            return
        now = str(int(time.time()))
        try:
            await self._redis.hset(self._keys.key_last_used, mapping=dict.fromkeys(used, now))  # type: ignore[misc]
        except TRANSIENT_ERRORS:
            self._used |= used  # try again next time
