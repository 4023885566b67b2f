"""Per-workspace ingestion rates: a token bucket per workspace in Redis, shared by every edge.

The check runs inside the enqueue script (eventplane.queue.ENQUEUE), so it costs no round trip of its
own: a group of one workspace's requests is queued only if its bucket holds all of its events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from eventplane import plans
from eventplane.errors import ApiError


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float  # 0: unlimited
    burst: float


UNLIMITED = Rate(0.0, 0.0)


class Rates:
    """Each plan's rate, scaled by EVENTPLANE_RATE_LIMIT_SCALE (0: no limit). The burst is never below
    `min_burst` (the largest batch the edge accepts), so every valid request fits once the bucket refills."""

    def __init__(self, scale: float, min_burst: int) -> None:
        self._scale = scale
        self._min_burst = min_burst
        self._cache: dict[str, Rate] = {}

    def of(self, plan_name: str) -> Rate:
        rate = self._cache.get(plan_name)
        if rate is None:
            plan = plans.get(plan_name)
            per_second, burst = plan.events_per_second * self._scale, max(plan.burst * self._scale, self._min_burst)
            rate = self._cache[plan_name] = Rate(per_second, burst) if per_second > 0 else UNLIMITED
        return rate


def limited(rate: Rate, events: int, wait: float) -> ApiError:
    """429 for a request that does not fit its workspace's bucket; Retry-After: seconds until it does."""
    return ApiError(
        429,
        "RATE_LIMITED",
        f"This workspace may send {rate.per_second:g} events/s (bursts of {rate.burst:g}); "
        f"these {events} events fit in {wait:.1f} s. Retry after Retry-After seconds, or slow down",
        {"events_per_second": rate.per_second, "burst": rate.burst, "retry_after": math.ceil(wait)},
        {"retry-after": str(max(1, math.ceil(wait)))},
    )
