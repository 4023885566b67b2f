"""The edge's queues, one per instance (eventplane/instances.py): each request's events go to the Redis
of its workspace's instance, named in the key's cache entry.

The default instance's batcher (the hub's Redis) exists from the start; another instance's is made the
first time one of its workspaces sends, from the registry in the hub's Postgres, with its own Redis
connections and its own flush and depth-polling tasks. Nothing is shared between instances but the event
loop: an instance whose Redis is down makes its own requests wait at most the enqueue timeout and answer
503, while every other instance's flushes go on. Instances are never re-pointed at other servers (there
is no command for it), so the registry needs no invalidation: an unknown name is looked up again, at most
once a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import asyncpg
from redis.asyncio import Redis

from eventplane import instances, tasks
from eventplane.errors import ApiError, unavailable
from eventplane.instances import Instance
from ingest.auth import LOOKUP_ERRORS
from ingest.batcher import Batcher

log = logging.getLogger("eventplane.ingest.instances")
REGISTRY_RETRY_SECONDS = 1.0
MAX_NOTED = 100_000

# Builds an instance's batcher and the Redis clients it owns (closed at shutdown).
BatcherFactory = Callable[[Instance], tuple[Batcher, list[Redis]]]


class Router:
    def __init__(self, default: Batcher, hub: asyncpg.Pool, make: BatcherFactory, retry_after: int) -> None:
        self.default = default
        self._hub = hub
        self._make = make
        self._retry_after = retry_after
        self._batchers: dict[str, Batcher] = {"": default}
        self._clients: list[Redis] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._looked_up: dict[str, float] = {}  # instance name -> when the registry was last read for it
        self._placement: dict[str, str] = {}  # workspace id -> instance, from the latest key lookups

    def known(self, instance: str) -> Batcher | None:
        """The batcher of an instance this edge has queued on already (the hot path: no await)."""
        return self._batchers.get(instance)

    async def get(self, instance: str) -> Batcher:
        """The batcher of this instance ("" for the default one); 503 while the hub cannot say where it is."""
        batcher = self._batchers.get(instance)
        if batcher is not None:
            return batcher
        async with self._lock:
            batcher = self._batchers.get(instance)
            if batcher is None:
                batcher = await self._open(instance)
        return batcher

    def note(self, workspace_id: str, instance: str) -> None:
        """Remember a workspace's instance from its key (for the flag routes' `$exposure` events)."""
        if len(self._placement) >= MAX_NOTED:
            self._placement.clear()
        self._placement[workspace_id] = instance

    async def of_workspace(self, workspace_id: str) -> Batcher:
        return await self.get(self._placement.get(workspace_id, ""))

    async def _open(self, name: str) -> Batcher:
        now = time.monotonic()
        if now - self._looked_up.get(name, -REGISTRY_RETRY_SECONDS) < REGISTRY_RETRY_SECONDS:
            raise self._unknown(name)
        self._looked_up[name] = now
        try:
            found = (await instances.registry(self._hub)).get(name)
        except LOOKUP_ERRORS as exc:
            log.warning("cannot read the instance registry: %s", type(exc).__name__)
            raise unavailable("QUEUE_UNAVAILABLE", "Cannot find this workspace's queue right now; retry",
                              self._retry_after) from None  # fmt: skip
        if found is None:
            raise self._unknown(name)
        batcher, clients = self._make(found)
        self._clients += clients
        self._tasks += [asyncio.create_task(batcher.run(), name=f"batcher {name}"),
                        asyncio.create_task(batcher.watch_depth(), name=f"depth {name}")]  # fmt: skip
        self._batchers[name] = batcher
        log.info("queueing events of instance %s", name)
        return batcher

    def _unknown(self, name: str) -> ApiError:
        log.error("a key names instance %r, which is not registered", name)
        return unavailable("QUEUE_UNAVAILABLE", "This workspace's queue is not reachable; retry", self._retry_after)

    async def close(self, within: float) -> None:
        """Flush every instance's pending events (within `within` seconds), stop their tasks, close them.
        The default batcher belongs to the edge, which drains and closes it."""
        others = [b for name, b in self._batchers.items() if name]
        try:
            async with asyncio.timeout(within):
                await asyncio.gather(*(b.drain() for b in others))
        except TimeoutError:
            log.error("shutdown: events of other instances still unqueued after %.1f s are dropped", within)
        await tasks.stop(self._tasks, 1.0, log)
        for client in self._clients:
            await client.aclose()
