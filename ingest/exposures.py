"""Sticky assignments and exposures of experiments at the edge (contract section 6).

A unit's first assignment to a variant is recorded in a Redis hash per (experiment, bucket version),
first writer wins; `assign` reads it before deciding, so later weight or allocation changes do not move
the unit. Each answer with a variant is an exposure: a `$exposure` event queued like any tracked event,
with the deterministic message_id the SDKs use for local assignments too, so that the workers' ledger
stores one per unit whoever recorded it. An edge remembers
the exposures it queued within a window (a bounded LRU) so a unit asking a thousand times costs one event.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

import orjson
from experimentation_sdk.evaluation import exposure_message_id
from redis.asyncio import Redis
from redis.exceptions import RedisError

from eventplane.errors import ApiError
from eventplane.queue import Lua, Row
from eventplane.redis_names import RedisNames
from ingest.instances import Router

log = logging.getLogger("eventplane.ingest.exposures")
EXPOSURE = "$exposure"

# First wins: answer the unit's recorded variant if the experiment still lists it (ARGV[3..]), else record
# and answer this one. A variant removed since it was recorded cannot be served, so it is replaced.
_RECORD = Lua(
    """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  for i = 3, #ARGV do
    if ARGV[i] == current then return current end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]
"""
)


def unavailable() -> ApiError:
    return ApiError(
        503, "ASSIGNMENTS_UNAVAILABLE", "Cannot read recorded assignments right now; retry shortly", None,
        {"retry-after": "2"},
    )  # fmt: skip


class Exposures:
    def __init__(self, redis: Redis, keys: RedisNames, router: Router, *, window: float, max_entries: int) -> None:
        self._redis = redis
        self._keys = keys
        self._router = router  # exposures are events: queued on their workspace's instance
        self._window = window
        self._max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str, int, str], float] = OrderedDict()
        self.queued = 0

    def _key(self, workspace_id: str, experiment: dict[str, Any]) -> str:
        return self._keys.sticky(workspace_id, experiment["key"], experiment["salt"], experiment["bucket_version"])

    def note(self, workspace_id: str, instance: str) -> None:
        """The instance a workspace's key named, where its exposures are queued."""
        self._router.note(workspace_id, instance)

    async def recorded(self, workspace_id: str, experiment: dict[str, Any], unit: str) -> str | None:
        """The variant recorded for this unit, if any (raises 503 when Redis cannot tell)."""
        try:
            raw = await self._redis.hget(self._key(workspace_id, experiment), unit)  # type: ignore[misc]
        except (RedisError, OSError):
            raise unavailable() from None
        return None if raw is None else str(raw.decode())

    async def record(self, workspace_id: str, experiment: dict[str, Any], unit: str, variant: str) -> str:
        """Record `variant` unless another edge recorded a variant still listed first; returns the one that counts."""
        try:
            listed = [v["key"] for v in experiment["variants"]]
            raw = await _RECORD(self._redis, [self._key(workspace_id, experiment)], [unit, variant, *listed])
        except (RedisError, OSError):
            raise unavailable() from None
        return str(raw.decode())

    async def expose(
        self,
        workspace_id: str,
        experiment: dict[str, Any],
        variant: str,
        user_id: str | None,
        anonymous_id: str | None,
        request_id: str,
    ) -> None:
        """Queue a `$exposure` event unless this edge queued the same one within the window. A queue that
        is full or down costs the exposure, never the answer; the next assignment tries again."""
        unit = user_id if user_id is not None else anonymous_id
        assert unit is not None
        bucket_version: int = experiment["bucket_version"]
        seen_key = (workspace_id, experiment["key"], bucket_version, unit)
        now = time.monotonic()
        until = self._seen.get(seen_key)
        if until is not None and until > now:
            return
        try:
            batcher = await self._router.of_workspace(workspace_id)
        except ApiError:
            return
        if batcher.refusal() is not None:
            return
        self._remember(seen_key, now + self._window)
        key: str = experiment["key"]
        properties = orjson.dumps({"experiment": key, "variant": variant, "bucket_version": bucket_version})
        row: Row = (
            workspace_id, exposure_message_id(key, bucket_version, unit), EXPOSURE, user_id, anonymous_id,
            None, properties, None, None, time.time_ns() // 1000, None,
        )  # fmt: skip
        try:
            await batcher.submit([row], request_id, workspace_id)  # not rate-limited: the SDK asked
        except ApiError:
            self._seen.pop(seen_key, None)
            log.warning("exposure not queued; the next assignment of this unit retries it")
            return
        self.queued += 1

    def _remember(self, seen_key: tuple[str, str, int, str], until: float) -> None:
        self._seen[seen_key] = until
        self._seen.move_to_end(seen_key)
        while len(self._seen) > self._max_entries:
            with contextlib.suppress(KeyError):
                self._seen.popitem(last=False)
