"""Per-workspace ingestion rates: a token bucket per workspace in Redis, shared by every edge.

The check runs inside the enqueue script (eventplane.queue.ENQUEUE), so it costs no round trip of its
own: a group of one workspace's requests is queued only if its bucket holds all of its events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from eventplane.errors import ApiError
from eventplane.plans import Plan


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float  # 0: unlimited
    burst: float


UNLIMITED = Rate(0.0, 0.0)


class Rates:
    """Each plan's rate, scaled by EVENTPLANE_RATE_LIMIT_SCALE (0: no limit)."""

    def __init__(self, scale: float) -> None:
        self._scale = scale
        self._cache: dict[Plan, Rate] = {}

    def of(self, plan: Plan) -> Rate:
        rate = self._cache.get(plan)
        if rate is None:
            per_second, burst = plan.events_per_second * self._scale, plan.burst * self._scale
            rate = self._cache[plan] = Rate(per_second, burst) if per_second > 0 else UNLIMITED
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
