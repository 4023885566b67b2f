"""The asyncio client's flag methods: a local answer is computed in place (microseconds, no I/O); one
that may need the edge (no document yet, a remote-sticky experiment) runs in a thread, so the event loop
never waits on the network."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from experimentation_sdk.client import ExperimentationClient
from experimentation_sdk.evaluation import Assignment, FlagResult


class AsyncFlagMethods:
    _client: ExperimentationClient

    def _local(self, experiment: str | None = None) -> bool:
        snapshot = self._client._flags.store.current
        if snapshot is None:
            return False
        return experiment is None or (snapshot.experiments.get(experiment) or {}).get("sticky") != "remote"

    async def flag_details(
        self, key: str, *, user_id: str | None = None, anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None, default: Any = None,
    ) -> FlagResult:  # fmt: skip
        kwargs: dict[str, Any] = {"user_id": user_id, "anonymous_id": anonymous_id, "attributes": attributes}
        if self._local():
            return self._client.flag_details(key, default=default, **kwargs)
        return await asyncio.to_thread(lambda: self._client.flag_details(key, default=default, **kwargs))

    async def is_enabled(
        self, key: str, *, user_id: str | None = None, anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None, default: bool = False,
    ) -> bool:  # fmt: skip
        result = await self.flag_details(
            key, user_id=user_id, anonymous_id=anonymous_id, attributes=attributes, default=default
        )
        return default if result.reason == "ERROR" else result.enabled

    async def get_value(
        self, key: str, *, user_id: str | None = None, anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None, default: Any = None,
    ) -> Any:  # fmt: skip
        result = await self.flag_details(
            key, user_id=user_id, anonymous_id=anonymous_id, attributes=attributes, default=default
        )
        return result.value

    async def variant_details(
        self, key: str, *, user_id: str | None = None, anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None, default: str | None = None,
    ) -> Assignment:  # fmt: skip
        kwargs: dict[str, Any] = {"user_id": user_id, "anonymous_id": anonymous_id, "attributes": attributes}
        if self._local(key):
            return self._client.variant_details(key, default=default, **kwargs)
        return await asyncio.to_thread(lambda: self._client.variant_details(key, default=default, **kwargs))

    async def get_variant(
        self, key: str, *, user_id: str | None = None, anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None, default: str | None = None,
    ) -> str | None:  # fmt: skip
        result = await self.variant_details(
            key, user_id=user_id, anonymous_id=anonymous_id, attributes=attributes, default=default
        )
        return result.variant

    # A timeout argument, not asyncio.timeout: the wait runs in a thread that cancelling cannot stop.
    async def wait_for_flags(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        return await asyncio.to_thread(self._client.wait_for_flags, timeout)
