"""Prometheus metrics of one worker process (served on EVENTPLANE_WORKER_METRICS_PORT)."""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

log = logging.getLogger("eventplane.workers.metrics")


class WorkerMetrics:
    def __init__(self) -> None:
        self._server: WSGIServer | None = None
        self.registry = CollectorRegistry()
        r = self.registry
        self.commit_rows = Histogram(
            "eventplane_worker_commit_rows", "Rows per transaction", registry=r,
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "eventplane_worker_commit_seconds", "Time to write and commit one transaction", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        self.lag_seconds = Histogram(
            "eventplane_worker_lag_seconds", "From the edge's receipt of a job's first event to its commit",
            registry=r, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )  # fmt: skip
        self.stored = Counter("eventplane_worker_events_stored", "New rows committed", registry=r)
        self.duplicates = Counter("eventplane_worker_events_duplicate", "Rows already stored (retries)", registry=r)
        self.refused = Counter(
            "eventplane_worker_events_refused", "Rows of people whose deletion was requested, not stored", registry=r
        )
        self.dead_letters = Counter("eventplane_worker_dead_letters", "Events Postgres refused", registry=r)
        self.failed_commits = Counter("eventplane_worker_failed_commits", "Transactions that failed", registry=r)

    def serve(self, port: int) -> None:
        if not port:
            return
        try:
            self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:  # a second worker on the same machine: metrics off rather than no worker
            log.warning("metrics port %d unavailable (%s); this worker serves no metrics", port, exc)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
