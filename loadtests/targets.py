"""The rows of issues 4 and 15, each with its reference and target, as table lines.

Every closed-loop row is checked against the load generator's ceiling for its body mode, measured in
the same run (loadtests/generator.py): a row without 1.5x headroom says GENERATOR-BOUND in its note.
"""

from __future__ import annotations

from typing import Any

from loadtests.generator import note as headroom
from loadtests.report import Check, Line, line

UNITS = {
    "noop": "req/s",
    "edge_single": "events/s",
    "edge_batch": "events/s",
    "evaluate": "evals/s",
    "naive": "events/s",
    "copy_ceiling": "rows/s",
    "pipeline": "events/s",
    "preloaded": "events/s",
    "instances_two": "events/s",
}
# Each closed-loop row's generator ceiling: (figure, mode), in the row's own unit.
GENERATOR = {
    "noop": ("generator_fixed", "fixed"),
    "noop_lua": ("generator_lua", "lua"),
    "edge_single": ("generator_fixed", "fixed"),
    "edge_batch": ("generator_batch", "fixed batch"),
    "evaluate": ("generator_fixed", "fixed"),
    "naive": ("generator_lua", "lua"),
    "pipeline_saturated": ("generator_batch_lua", "lua batch"),
    "pipeline": ("generator_batch_lua", "lua batch"),
    "preloaded_saturated": ("generator_batch_lua", "lua batch"),
    "preloaded": ("generator_batch_lua", "lua batch"),
}
# Rows whose rate is counted in requests for the generator (the pipeline rows count stored events; their
# generator offers requests of 100 events: compare accepted requests with the ceiling in requests).
PROBE_REQUESTS = {"pipeline_saturated": "pipeline_probe_requests", "preloaded_saturated": "preloaded_probe_requests"}


def ratio_at_least(x: float) -> Check:
    return lambda value, ratio: ratio is not None and ratio >= x


def at_most(x: float) -> Check:
    return lambda value, ratio: value <= x


def gen_note(f: dict[str, float | None], row: str) -> str:
    ceiling_key, mode = GENERATOR[row]
    ceiling = f.get(ceiling_key)
    if row in PROBE_REQUESTS:
        requests = f.get(PROBE_REQUESTS[row])
        return headroom(requests, None if ceiling is None else ceiling / 100, mode)
    return headroom(f.get(row), ceiling, mode)


def lines(f: dict[str, float | None], raw: dict[str, Any]) -> list[Line]:
    pipe, lat, pre = raw.get("pipeline", {}), raw.get("latency", {}), raw.get("preloaded", {})

    def notes(row: str, *extra: str) -> str:
        n = raw.get(row, {}).get("errors", 0)
        parts = [f"{n} failed requests" if n else "", *extra, gen_note(f, row) if row in GENERATOR else ""]
        return "; ".join(p for p in parts if p)

    offered = f"offered {pipe.get('offered_events_per_s', 0):,.0f}/s for {pipe.get('seconds', 0):.0f} s"
    refused = f"{pipe.get('failed_requests', 0)} refused; drained in {pipe.get('drain_seconds', 0):.1f} s"
    pre_offered = f"offered {pre.get('offered_events_per_s', 0):,.0f}/s (the empty row's rate)"
    pre_refused = f"{pre.get('failed_requests', 0)} refused"
    rate = f"constant rate; achieved {lat.get('achieved_rps', 0):,.0f}/s, {lat.get('failed', 0)} failed"
    stored = f"{f.get('preload_seconds') or 0:.0f} s to preload"
    return [
        line(f, "generator_fixed", "req/s", note="wrk vs responder.c: requests built once, replayed"),
        line(f, "generator_lua", "req/s", note="wrk vs responder.c: post.lua builds each body (fresh ids)"),
        line(f, "generator_batch", "events/s", note="batches of 100, fixed"),
        line(f, "generator_batch_lua", "events/s", note="batches of 100, post.lua"),
        line(f, "noop", "req/s", note=notes("noop", "uvicorn, fixed bodies")),
        line(f, "noop_lua", "req/s", "noop", note=notes("noop_lua", "the same app, post.lua bodies")),
        line(f, "edge_single", "events/s", "noop", ">= 0.6x noop", ratio_at_least(0.6), notes("edge_single")),
        line(
            f, "edge_batch", "events/s", "edge_single", ">= 200,000/s", lambda v, r: v >= 200_000, notes("edge_batch")
        ),
        line(f, "evaluate", "evals/s", "noop", note=notes("evaluate", "a 3-rule flag, 200 users cycled")),
        line(f, "copy_ceiling", "rows/s", note="1 connection, COPY of 5,000-row batches"),
        line(f, "naive", "events/s", note=notes("naive")),
        line(f, "pipeline_saturated", "events/s", "copy_ceiling", note=notes("pipeline_saturated", "closed loop")),
        line(
            f,
            "pipeline",
            "events/s",
            "copy_ceiling",
            ">= 30,000/s",
            lambda v, r: v >= 30_000,
            notes("pipeline", offered),
        ),
        line(f, "pipeline/naive", "events/s", "naive", key="pipeline"),
        line(f, "queue_max_depth", "events", "", "bounded", lambda v, r: bool(pipe.get("bounded")), refused),
        line(f, "lag_p50", "s"),
        line(f, "lag_p99", "s", "", "<= 1 s", at_most(1.0), f"{pipe.get('lag_events', 0):,} events"),
        line(f, "preload_seconds", "s", note="events and ledger rows stored before the preloaded rows"),
        line(
            f,
            "preloaded_saturated",
            "events/s",
            "pipeline_saturated",
            ">= 0.8x",
            ratio_at_least(0.8),
            notes("preloaded_saturated", stored),
        ),
        line(f, "preloaded", "events/s", "pipeline", ">= 0.8x", ratio_at_least(0.8), notes("preloaded", pre_offered)),
        line(f, "preloaded_max_depth", "events", "", "bounded", lambda v, r: bool(pre.get("bounded")), pre_refused),
        line(f, "preloaded_lag_p99", "s", "lag_p99", "<= 1 s", at_most(1.0)),
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
