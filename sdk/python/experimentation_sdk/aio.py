"""The client for asyncio code: the same core (queue, sender thread, accounting); whatever may block
(a full queue under the `block` policy, sync mode's sending, flush, close) runs in a worker thread
through asyncio.to_thread, so the event loop never waits on the network."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

from experimentation_sdk.accounting import Stats
from experimentation_sdk.aio_flags import AsyncFlagMethods
from experimentation_sdk.client import ExperimentationClient


class AsyncExperimentationClient(AsyncFlagMethods):
    """Same arguments and semantics as ExperimentationClient; `track`, `identify`, `flush`, `close` are
    coroutines."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, **kwargs: Any) -> None:
        # The constructor may send spooled batches in sync mode: that is a blocking call, made once.
        self._client = ExperimentationClient(api_key, base_url, **kwargs)
        options = self._client.options
        self._may_block = options.sync_mode or options.queue_full == "block"

    async def track(
        self,
        event_type: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        value: float | None = None,
        timestamp: dt.datetime | None = None,
        message_id: str | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {
            "user_id": user_id, "anonymous_id": anonymous_id, "properties": properties, "value": value,
            "timestamp": timestamp, "message_id": message_id,
        }  # fmt: skip
        if self._may_block:
            return await asyncio.to_thread(lambda: self._client.track(event_type, **kwargs))
        return self._client.track(event_type, **kwargs)  # enqueue only: microseconds, never waits

    async def identify(self, user_id: str, traits: Mapping[str, Any] | None = None, **kwargs: Any) -> bool:
        return await self.track("$identify", user_id=user_id, properties=traits or {}, **kwargs)

    # A timeout argument, not asyncio.timeout: the wait runs in a thread that cancelling cannot stop.
    async def flush(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        return await asyncio.to_thread(self._client.flush, timeout)

    async def close(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        return await asyncio.to_thread(self._client.close, timeout)

    def stats(self) -> Stats:
        return self._client.stats()

    async def __aenter__(self) -> AsyncExperimentationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
