"""Event data lives on the workspace's instance (eventplane/instances.py): the api reads usage, results
and events from that instance's Postgres, and live streams from its Redis, and nothing else from there.

The hub says where a workspace is (one indexed read per request); a pool and a Redis client per instance
are made the first time they are needed and closed with the app. The default instance is the hub itself.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from redis.asyncio import Redis

from eventplane import db, instances
from eventplane.instances import Instance
from eventplane.redis_client import connect_redis

POOL_SIZE = 5  # per instance, per api process


class InstanceData:
    def __init__(self, hub: asyncpg.Pool, hub_redis: Redis) -> None:
        self._hub = hub
        self._hub_redis = hub_redis
        self._pools: dict[str, asyncpg.Pool] = {}
        self._redis: dict[str, Redis] = {}
        self._lock = asyncio.Lock()
        self._known: dict[str, Instance] = {}

    async def _instance(self, workspace_id: uuid.UUID) -> Instance | None:
        """The workspace's instance; None for the default one (or no such workspace: the caller's access
        check has found it already, so this is only a workspace deleted meanwhile)."""
        name = await self._hub.fetchval("SELECT instance FROM workspaces WHERE id = $1", workspace_id)
        if name is None:
            return None
        found = self._known.get(name)  # an instance's servers never change (no command changes them)
        if found is None:
            found = self._known[name] = (await instances.registry(self._hub))[name]  # FK: it exists
        return found

    async def pool(self, workspace_id: uuid.UUID) -> asyncpg.Pool:
        """The Postgres holding this workspace's events, ledger and usage."""
        instance = await self._instance(workspace_id)
        if instance is None:
            return self._hub
        pool = self._pools.get(instance.name)
        if pool is None:
            async with self._lock:
                pool = self._pools.get(instance.name)
                if pool is None:
                    pool = await db.create_pool(instance.database_url, min_size=0, max_size=POOL_SIZE)
                    self._pools[instance.name] = pool
        return pool

    async def redis(self, workspace_id: uuid.UUID) -> Redis:
        """The Redis this workspace's workers publish its stored events on."""
        instance = await self._instance(workspace_id)
        if instance is None:
            return self._hub_redis
        client = self._redis.get(instance.name)
        if client is None:
            client = self._redis[instance.name] = connect_redis(instance.redis_url)
        return client

    async def close(self) -> None:
        for pool in self._pools.values():
            await db.close_pool(pool)
        for client in self._redis.values():
            await client.aclose()
