"""The rows of issue 4, each with its reference and target, as table lines."""

from __future__ import annotations

from typing import Any

from loadtests.report import Check, Line, line

UNITS = {
    "noop": "req/s",
    "edge_single": "events/s",
    "edge_batch": "events/s",
    "evaluate": "evals/s",
    "naive": "events/s",
    "copy_ceiling": "rows/s",
    "pipeline": "events/s",
    "instances_two": "events/s",
}


def ratio_at_least(x: float) -> Check:
    return lambda value, ratio: ratio is not None and ratio >= x


def at_most(x: float) -> Check:
    return lambda value, ratio: value <= x


def lines(f: dict[str, float | None], raw: dict[str, Any]) -> list[Line]:
    pipe, lat = raw.get("pipeline", {}), raw.get("latency", {})

    def failed(name: str) -> str:
        n = raw.get(name, {}).get("errors", 0)
        return f"{n} failed requests" if n else ""

    offered = f"offered {pipe.get('offered_events_per_s', 0):,.0f}/s for {pipe.get('seconds', 0):.0f} s"
    refused = f"{pipe.get('failed_requests', 0)} refused; drained in {pipe.get('drain_seconds', 0):.1f} s"
    rate = f"constant rate; achieved {lat.get('achieved_rps', 0):,.0f}/s, {lat.get('failed', 0)} failed"
    return [
        line(f, "noop", "req/s", note=failed("noop")),
        line(f, "edge_single", "events/s", "noop", ">= 0.7x noop", ratio_at_least(0.7), failed("edge_single")),
        line(
            f, "edge_batch", "events/s", "edge_single", ">= 150,000/s", lambda v, r: v >= 150_000, failed("edge_batch")
        ),
        line(f, "evaluate", "evals/s", "noop", note=failed("evaluate") or "a 3-rule flag, a new user per request"),
        line(f, "copy_ceiling", "rows/s", note="1 connection, COPY of 5,000-row batches"),
        line(f, "naive", "events/s", note=failed("naive")),
        line(f, "pipeline_saturated", "events/s", "copy_ceiling", note="stored/s during the closed-loop probe"),
        line(f, "pipeline", "events/s", "copy_ceiling", ">= 0.5x copy", ratio_at_least(0.5), offered),
        line(f, "pipeline/naive", "events/s", "naive", ">= 20x naive", ratio_at_least(20), key="pipeline"),
        line(f, "queue_max_depth", "events", "", "bounded", lambda v, r: bool(pipe.get("bounded")), refused),
        line(f, "lag_p50", "s"),
        line(f, "lag_p99", "s", "", "<= 1 s", at_most(1.0), f"{pipe.get('lag_events', 0):,} events"),
        line(f, "latency_rate", "req/s", "edge_single", "0.5x edge_single", note=rate),
        line(f, "latency_p50", "ms", "noop_latency_p50"),
        line(f, "latency_p99", "ms", "noop_latency_p99", "<= 5 ms", at_most(5.0)),
        line(f, "latency_p999", "ms", "noop_latency_p999"),
        line(f, "noop_latency_p50", "ms", note="the no-op app at the same constant rate: generator + HTTP"),
        line(f, "noop_latency_p99", "ms"),
        line(f, "noop_latency_p999", "ms"),
        line(f, "instances_one", "events/s", note="stored/s, closed loop, every workspace on one instance"),
        line(
            f,
            "instances_two",
            "events/s",
            "instances_one",
            note="half the workspaces on a second instance (own Postgres + Valkey + worker), all on the server core",
        ),
        line(f, "hub_reads_per_request", "reads", note="edge key-cache misses per request (hub Redis/Postgres)"),
        line(f, "edge_rss_mb", "MB", "", "<= 150 MB", at_most(150)),
        line(f, "worker_rss_mb", "MB"),
    ]
