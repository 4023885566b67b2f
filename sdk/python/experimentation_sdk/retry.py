"""When to try again: which answers are worth a retry, exponential backoff with full jitter, Retry-After."""

from __future__ import annotations

import email.utils
import random
import time

RETRYABLE = frozenset({408, 429})


def retryable(status: int) -> bool:
    return status in RETRYABLE or status >= 500


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class Backoff:
    def __init__(self, base: float, cap: float, max_retry_after: float) -> None:
        self.base = base
        self.cap = cap
        self.max_retry_after = max_retry_after

    def delay(self, attempt: int, server_hint: float | None) -> float:
        """Before retry number `attempt` (1-based): full jitter over base * 2^(attempt-1), capped; never
        sooner than the server's Retry-After (itself clamped, so a hostile or buggy value cannot park us)."""
        ceiling = min(self.cap, self.base * 2 ** min(attempt - 1, 30))
        jittered = random.uniform(0.0, ceiling)
        if server_hint is None:
            return jittered
        return max(min(server_hint, self.max_retry_after), jittered)
