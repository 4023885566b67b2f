"""The client's settings: resolved and checked once, when the client is made, into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from experimentation_sdk.errors import DeliveryError

QueueFullPolicy = Literal["drop_newest", "drop_oldest", "block"]
ErrorCallback = Callable[[DeliveryError], None]
API_KEY_ENV = "EXPERIMENTATION_API_KEY"
BASE_URL_ENV = "EXPERIMENTATION_BASE_URL"
MAX_BATCH_EVENTS = 2500  # the edge's limit per request


@dataclass(frozen=True)
class Options:
    api_key: str
    base_url: str
    max_queue_size: int = 10_000
    queue_full: QueueFullPolicy = "drop_newest"
    block_timeout: float = 0.1
    batch_size: int = 100
    flush_interval: float = 0.5
    gzip: bool = True
    timeout: float = 10.0
    retry_budget: float = 300.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 60.0
    flush_at_exit: bool = True
    shutdown_timeout: float = 5.0
    sync_mode: bool = False
    spool_dir: Path | None = None
    on_error: ErrorCallback | None = None

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError(f"No API key: pass api_key= or set {API_KEY_ENV}")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL (https://events.example.com), not {self.base_url!r}")
        if self.queue_full not in ("drop_newest", "drop_oldest", "block"):
            raise ValueError("queue_full must be 'drop_newest', 'drop_oldest' or 'block'")
        if not 1 <= self.batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_EVENTS}")
        if self.max_queue_size < 1:
            raise ValueError("max_queue_size must be at least 1")
        for name in ("block_timeout", "flush_interval", "timeout", "retry_budget", "backoff_base", "backoff_max",
                     "max_retry_after", "shutdown_timeout"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def resolve_key(api_key: str | None) -> str:
    return api_key or os.environ.get(API_KEY_ENV, "")


def resolve_url(base_url: str | None, api_url: str | None) -> str:
    if base_url and api_url and base_url != api_url:
        raise ValueError("Pass base_url or its alias api_url, not two different URLs")
    url = base_url or api_url or os.environ.get(BASE_URL_ENV, "")
    if not url:
        raise ValueError(f"No base_url: pass base_url= (or api_url=) or set {BASE_URL_ENV}")
    return url.rstrip("/")
