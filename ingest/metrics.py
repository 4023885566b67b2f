"""Prometheus metrics of one edge process, served at GET /metrics.

The request path only bumps plain integers (no locks, no label lookups); a collector turns them into
metric families when Prometheus scrapes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class EdgeStats:
    def __init__(self) -> None:
        self.responses: Counter[tuple[str, int]] = Counter()
        self.rejections: Counter[str] = Counter()
        self.client_dropped: Counter[str] = Counter()  # events SDKs reported dropped, by reason
        self.events_accepted = 0
        self.queue_depth = 0
        self.queue_oldest_age = 0.0


class _Collector(Collector):
    def __init__(self, stats: EdgeStats, key_cache: Callable[[], tuple[int, int, int]]) -> None:
        self._stats = stats
        self._key_cache = key_cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self._stats
        requests = CounterMetricFamily("eventplane_ingest_requests", "Tracking requests", labels=["route", "status"])
        for (route, status), n in s.responses.items():
            requests.add_metric([route, str(status)], n)
        yield requests
        rejected = CounterMetricFamily("eventplane_ingest_rejections", "Refused requests by code", labels=["code"])
        for code, n in s.rejections.items():
            rejected.add_metric([code], n)
        yield rejected
        dropped = CounterMetricFamily(
            "eventplane_ingest_client_dropped", "Events SDKs reported they dropped", labels=["reason"]
        )
        for reason, n in s.client_dropped.items():
            dropped.add_metric([reason], n)
        yield dropped
        yield CounterMetricFamily("eventplane_ingest_events_accepted", "Events answered 202", value=s.events_accepted)
        yield GaugeMetricFamily("eventplane_queue_depth_events", "Events queued, not yet stored", value=s.queue_depth)
        yield GaugeMetricFamily(
            "eventplane_queue_oldest_age_seconds", "Age of the oldest queued batch", value=s.queue_oldest_age
        )
        hits, misses, refused = self._key_cache()
        lookups = CounterMetricFamily("eventplane_ingest_key_cache_lookups", "Key lookups", labels=["result"])
        lookups.add_metric(["hit"], hits)
        lookups.add_metric(["miss"], misses)
        yield lookups
        yield CounterMetricFamily(
            "eventplane_ingest_key_cache_refused_entries", "Key-cache entries in Redis that failed their HMAC",
            value=refused,
        )  # fmt: skip


class EdgeMetrics:
    def __init__(self, key_cache: Callable[[], tuple[int, int, int]]) -> None:
        self.registry = CollectorRegistry()
        self.stats = EdgeStats()
        self.registry.register(_Collector(self.stats, key_cache))
        self.flush_events = Histogram(
            "eventplane_ingest_flush_events", "Events per Redis write (coalesced requests)",
            buckets=(1, 5, 10, 50, 100, 500, 1000, 5000, 20000), registry=self.registry,
        )  # fmt: skip
