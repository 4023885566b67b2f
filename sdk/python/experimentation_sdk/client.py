"""The public client: enqueue from any thread, one background sender, flush at exit."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from experimentation_sdk.accounting import Stats
from experimentation_sdk.core import Core
from experimentation_sdk.events import InvalidEvent, encode
from experimentation_sdk.flag_api import FlagMethods
from experimentation_sdk.flags import Flags
from experimentation_sdk.options import ErrorCallback, Options, QueueFullPolicy, resolve_key, resolve_url

IDENTIFY = "$identify"


class ExperimentationClient(FlagMethods):
    """Sends product events to EventPlane.

    `track` returns at once; a background thread batches, gzips and delivers with retries. Every event
    carries a `message_id`, so retries are stored once. Losses are counted by reason (`stats()`), passed
    to `on_error`, logged, and reported to the server.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        api_url: str | None = None,
        max_queue_size: int = 10_000,
        queue_full: QueueFullPolicy = "drop_newest",
        block_timeout: float = 0.1,
        batch_size: int = 100,
        flush_interval: float = 0.5,
        gzip: bool = True,
        timeout: float = 10.0,
        retry_budget: float = 300.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        flush_at_exit: bool = True,
        shutdown_timeout: float = 5.0,
        sync_mode: bool = False,
        spool_dir: str | os.PathLike[str] | None = None,
        on_error: ErrorCallback | None = None,
        flag_timeout: float = 1.0,
        flag_stream: bool = True,
        config_poll_interval: float = 30.0,
    ) -> None:
        options = Options(
            api_key=resolve_key(api_key),
            base_url=resolve_url(base_url, api_url),
            max_queue_size=max_queue_size,
            queue_full=queue_full,
            block_timeout=block_timeout,
            batch_size=batch_size,
            flush_interval=flush_interval,
            gzip=gzip,
            timeout=timeout,
            retry_budget=retry_budget,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_after=max_retry_after,
            flush_at_exit=flush_at_exit,
            shutdown_timeout=shutdown_timeout,
            sync_mode=sync_mode,
            spool_dir=Path(spool_dir) if spool_dir is not None else None,
            on_error=on_error,
        )
        self._core = Core(options)
        self._flags = Flags(
            options.base_url, options.api_key, self.track,
            timeout=flag_timeout, stream=flag_stream, poll_interval=config_poll_interval,
        )  # fmt: skip

    @property
    def options(self) -> Options:
        return self._core.options

    def track(
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
        """Queue one event (in `sync_mode`: send it now, with retries). Returns whether it was queued (or,
        in `sync_mode`, delivered); an event that was not is counted in `stats().dropped`."""
        try:
            event = encode(
                event_type, user_id=user_id, anonymous_id=anonymous_id, properties=properties,
                value=value, timestamp=timestamp, message_id=message_id,
            )  # fmt: skip
        except InvalidEvent as exc:
            self._core.dropped(exc.reason, 1, str(exc))
            return False
        return self._core.enqueue(event)

    def identify(
        self,
        user_id: str,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
        timestamp: dt.datetime | None = None,
        message_id: str | None = None,
    ) -> bool:
        """Who `user_id` is: sent as event type `$identify` with the traits as its properties."""
        return self.track(
            IDENTIFY, user_id=user_id, anonymous_id=anonymous_id, properties=traits or {},
            timestamp=timestamp, message_id=message_id,
        )  # fmt: skip

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued now; True when all of it was delivered within `timeout` seconds."""
        return self._core.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush (at most `timeout`, default `shutdown_timeout`), stop the sender, and spool (or count
        as dropped, reason `shutdown`) what is left. Later `track` calls are dropped (reason `closed`)."""
        self._flags.close()
        return self._core.close(self._core.options.shutdown_timeout if timeout is None else timeout)

    def stats(self) -> Stats:
        return self._core.stats()

    def __enter__(self) -> ExperimentationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
