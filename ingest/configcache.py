"""Each workspace's flag and experiment config at the edge, and the push of its changes.

Lookups go local dict -> Redis -> Postgres (read only), as the key cache does. The api publishes a
workspace id on the config channel after every committed change; each edge then drops its copy and the
shared Redis copy, and wakes that workspace's SSE streams, which fetch the new document at once. Redis
copies are written only over an older version, and a fill that raced a change reads Postgres again, so a
slow reader cannot bring back a document older than the change it missed. While the channel is down
local copies live a second and Redis copies are not trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from eventplane import flagconfig
from eventplane.errors import ApiError
from eventplane.flagconfig import Config
from eventplane.queue import Lua
from eventplane.redis_names import RedisNames

log = logging.getLogger("eventplane.ingest.configcache")
MAX_LOCAL_ENTRIES = 10_000
REDIS_TTL_SECONDS = 3600

# Keep the newer document: a writer holding an older version than the stored one changes nothing.
_STORE = Lua(
    """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""
)


class _Document(msgspec.Struct):
    version: int
    flags: list[dict[str, Any]] = []
    experiments: list[dict[str, Any]] = []


_decoder = msgspec.json.Decoder(_Document)


@dataclass(frozen=True)
class Cached:
    """A config as the edge serves it: the document's bytes, and its definitions by key."""

    config: Config
    flags: dict[str, dict[str, Any]]
    experiments: dict[str, dict[str, Any]]

    @property
    def version(self) -> int:
        return self.config.version

    @property
    def etag(self) -> str:
        return self.config.etag


def parse(workspace_id: str, body: bytes) -> Cached:
    doc = _decoder.decode(body)
    return Cached(
        Config(workspace_id, doc.version, body),
        {f["key"]: f for f in doc.flags},
        {e["key"]: e for e in doc.experiments},
    )


@dataclass(eq=False)
class Watcher:
    """One SSE stream's interest in a workspace: `changed` is set when its config may have changed."""

    workspace_id: str
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class ConfigCache:
    def __init__(
        self, redis: Redis, pool: asyncpg.Pool, keys: RedisNames, ttl: float, unsubscribed_ttl: float = 1.0
    ) -> None:
        self._redis = redis
        self._pool = pool
        self._keys = keys
        self._ttl = ttl
        # Without the channel no change can be heard: a copy read from Postgres is kept this long only, so
        # a change still shows within about a second, and Postgres sees one read a second per workspace.
        self._unsubscribed_ttl = unsubscribed_ttl
        self._local: dict[str, tuple[Cached, float]] = {}
        self._generation: dict[str, int] = {}  # per workspace, bumped by each change message
        self._filling: dict[str, asyncio.Task[Cached]] = {}  # one fill per workspace at a time
        self._watchers: dict[str, set[Watcher]] = {}
        self._live = False
        # Workspaces whose Redis copy this edge has seen a change message for (or has refilled) since it
        # last subscribed; others are read from Postgres once, as changes may have been missed meanwhile.
        self._verified: set[str] = set()
        self.hits = 0
        self.misses = 0

    @property
    def live(self) -> bool:
        """Subscribed to the config channel: changes are announced."""
        return self._live

    async def get(self, workspace_id: str) -> Cached:
        entry = self._local.get(workspace_id)
        if entry is not None and entry[1] > time.monotonic():
            self.hits += 1
            return entry[0]
        self.misses += 1
        task = self._filling.get(workspace_id)
        if task is None:
            task = self._filling[workspace_id] = asyncio.create_task(self._fill(workspace_id))
            task.add_done_callback(lambda done: self._filled(workspace_id, done))
        return await asyncio.shield(task)  # a caller that hangs up does not cancel the others' fill

    def _filled(self, workspace_id: str, task: asyncio.Task[Cached]) -> None:
        if self._filling.get(workspace_id) is task:
            del self._filling[workspace_id]

    async def _fill(self, workspace_id: str) -> Cached:
        generation = self._generation.get(workspace_id, 0)
        cached = await self._from_redis(workspace_id) if workspace_id in self._verified else None
        if cached is None or generation != self._generation.get(workspace_id, 0):
            cached = await self._from_postgres(workspace_id)
        while generation != self._generation.get(workspace_id, 0):
            # A change arrived while we read: what we hold may predate it.
            generation = self._generation.get(workspace_id, 0)
            cached = await self._from_postgres(workspace_id)
        if self._live:
            self._verified.add(workspace_id)
        if len(self._local) >= MAX_LOCAL_ENTRIES:
            self._local.clear()
        ttl = self._ttl if self._live else self._unsubscribed_ttl
        self._local[workspace_id] = (cached, time.monotonic() + ttl)
        return cached

    async def _from_redis(self, workspace_id: str) -> Cached | None:
        try:
            raw = await self._redis.hget(self._keys.flag_config(workspace_id), "b")  # type: ignore[misc]
        except (RedisError, OSError):
            return None
        return None if raw is None else parse(workspace_id, raw)

    async def _from_postgres(self, workspace_id: str) -> Cached:
        try:
            async with self._pool.acquire() as conn:
                config = await flagconfig.load(conn, uuid.UUID(workspace_id))
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            log.warning("config load failed: %s", type(exc).__name__)
            raise ApiError(
                503, "CONFIG_UNAVAILABLE", "Cannot read flag definitions right now; retry shortly", None,
                {"retry-after": "2"},
            ) from None  # fmt: skip
        with contextlib.suppress(RedisError, OSError):
            key = self._keys.flag_config(workspace_id)
            await _STORE(self._redis, [key], [config.version, config.body, REDIS_TTL_SECONDS])
        return parse(workspace_id, config.body)

    @contextlib.contextmanager
    def watch(self, workspace_id: str) -> Iterator[Watcher]:
        watcher = Watcher(workspace_id)
        self._watchers.setdefault(workspace_id, set()).add(watcher)
        try:
            yield watcher
        finally:
            watchers = self._watchers.get(workspace_id)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[workspace_id]

    async def listen(self) -> None:
        """Follow the config channel forever, resubscribing (and distrusting local copies) on errors."""
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._keys.config_channel)
                self._changed_all()  # changes may have been missed while unsubscribed
                self._live = True
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        await self._changed(message["data"].decode())
            except (RedisError, OSError) as exc:
                if self._live:
                    log.warning("config channel lost (%s); bypassing local copies", type(exc).__name__)
                self._live = False
                self._changed_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _changed(self, workspace_id: str) -> None:
        self._local.pop(workspace_id, None)
        self._filling.pop(workspace_id, None)  # callers from now on wait for a fill that follows the change
        self._generation[workspace_id] = self._generation.get(workspace_id, 0) + 1
        with contextlib.suppress(RedisError, OSError):
            # Every edge drops the shared copy; the next fill writes the new version back.
            await self._redis.delete(self._keys.flag_config(workspace_id))
        for watcher in self._watchers.get(workspace_id, ()):
            watcher.changed.set()

    def _changed_all(self) -> None:
        self._local.clear()
        self._verified.clear()
        for workspace_id in {*self._generation, *self._watchers, *self._filling}:
            self._generation[workspace_id] = self._generation.get(workspace_id, 0) + 1
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.changed.set()
