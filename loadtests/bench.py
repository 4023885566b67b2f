"""`make bench`: the ingestion path and its references, measured in one run on this machine.

    python -m loadtests.bench            # full run, about 12 minutes; writes loadtests/results/<UTC>.json/.png
    python -m loadtests.bench --smoke    # seconds per row: proves the harness works, measures nothing
    python -m loadtests.bench --rows generator,noop,edge --seconds 5   # some rows, shorter

Servers (edge, worker, naive app, Postgres, Valkey) run on core 0 and the load generator on core 1, so
each figure is "what one core serves"; ratios to the references taken in the same run are what to
compare across runs, because absolute numbers drift on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from loadtests import flagbench, generator, loadgen, payloads, pipeline, preload, profile, report, targets
from loadtests import instances as two_instances
from loadtests.provision import all_keys, provision
from loadtests.rss import PeakRss
from loadtests.stack import (
    SERVER_CORE,
    Env,
    Procs,
    free_port,
    install_signal_handlers,
    python,
    reset_events,
    reset_queue,
    server_pids,
    servers_for_run,
    wait_http,
)

TRACK = "/api/v1/tracking/track"
BATCH = "/api/v1/tracking/batch"
RESULTS = Path(__file__).resolve().parent / "results"
UVICORN = ["uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]


@dataclass(frozen=True)
class Plan:
    seconds: float  # each closed-loop row
    warmup: float
    latency_seconds: float
    probe_seconds: float
    calibrate_seconds: float
    pipeline_seconds: float
    pipeline_fraction: float  # of the saturated store rate, offered during the sustained phase
    pipeline_high_water: int
    workspaces: int
    generator_seconds: float  # each generator-ceiling measurement
    preload_events: int  # events already stored for the `preloaded` rows


FULL = Plan(10, 2, 15, 15, 15, 60, 0.8, 100_000, 20, 5, 20_000_000)
SMOKE = Plan(1, 0, 1, 2, 2, 3, 0.5, 100_000, 3, 1, 20_000)


@dataclass(frozen=True)
class Files:
    keys: Path
    single: Path
    batch: Path
    single_bodies: list[bytes]
    batch_bodies: list[bytes]
    key_list: list[str]
    evaluate: Path

    def senders(self, bodies: list[bytes], count: int = 4) -> list[tuple[bytes, str]]:
        return [(bodies[i % len(bodies)], self.key_list[i % len(self.key_list)]) for i in range(count)]


def prepare(env: Env, plan: Plan) -> Files:
    made = asyncio.run(provision(env.database_url, plan.workspaces, 2))
    asyncio.run(flagbench.seed(env.database_url, [ws["id"] for ws in made]))
    keys = all_keys(made)
    single, batch = payloads.single_bodies(200), payloads.batch_bodies(20)
    d = env.work_dir
    return Files(
        loadgen.write_lines(d / "keys.txt", keys),
        loadgen.write_lines(d / "single.txt", single),
        loadgen.write_lines(d / "batch.txt", batch),
        single,
        batch,
        keys,
        loadgen.write_lines(d / "evaluate.txt", flagbench.bodies(200)),
    )


def serve(procs: Procs, name: str, argv: list[str], env: dict[str, str], health: str = "/healthz") -> tuple[Any, int]:
    """Start an HTTP server on a free port (`--port` for uvicorn, EVENTPLANE_INGEST_PORT for the edge)."""
    port = free_port()
    argv = [*argv, "--port", str(port)] if "uvicorn" in argv else argv
    proc = procs.start(name, argv, {**env, "EVENTPLANE_INGEST_PORT": str(port)})
    try:
        wait_http(port, health, proc=proc)
    except RuntimeError:
        print(procs.log_tail(name), file=sys.stderr)
        raise
    return proc, port


class Bench:
    def __init__(self, env: Env, procs: Procs, plan: Plan, files: Files, rss: PeakRss, profile_dir: Path | None):
        self.env, self.procs, self.plan, self.files, self.rss = env, procs, plan, files, rss
        self.profile_dir = profile_dir
        self.figures: dict[str, float | None] = {}
        self.raw: dict[str, Any] = {}

    def closed(
        self,
        name: str,
        port: int,
        path: str,
        bodies: Path,
        per_request: int = 1,
        fixed: bool = True,
        seconds: float | None = None,
    ) -> loadgen.Closed:
        """A closed-loop wrk row; `fixed`: requests built once and replayed (rows without a worker)."""
        url = f"http://127.0.0.1:{port}{path}"
        result = loadgen.wrk(url, self.files.keys, bodies, seconds or self.plan.seconds, fixed=fixed)
        self.figures[name] = result.ok_per_second * per_request
        self.raw[name] = {**asdict(result), "mode": "fixed" if fixed else "lua"}
        print(f"  {name}: {self.figures[name]:,.0f}/s ({result.errors} errors)", flush=True)
        return result

    def warm(self, port: int, path: str, bodies: Path) -> None:
        """Start connections, fill the edge's key cache, let uvicorn settle (not measured)."""
        if self.plan.warmup > 0:
            loadgen.wrk(f"http://127.0.0.1:{port}{path}", self.files.keys, bodies, self.plan.warmup)

    def generator(self) -> None:
        """The load generator's ceilings, one per body mode and body kind, against responder.c."""
        binary = generator.build(self.env.work_dir)
        port = free_port()
        proc = self.procs.start("responder", [str(binary), str(port)], self.env.process_env())
        wait_http(port, "/", proc=proc)
        secs = self.plan.generator_seconds
        self.closed("generator_fixed", port, TRACK, self.files.single, seconds=secs)
        self.closed("generator_lua", port, TRACK, self.files.single, fixed=False, seconds=secs)
        self.closed("generator_batch", port, BATCH, self.files.batch, payloads.BATCH_SIZE, seconds=secs)
        n = payloads.BATCH_SIZE
        self.closed("generator_batch_lua", port, BATCH, self.files.batch, n, fixed=False, seconds=secs)
        self.procs.stop(proc)

    def noop(self) -> None:
        proc, port = serve(self.procs, "noop", [*python(), *UVICORN, "loadtests.noop:app"], self.env.process_env(), "/")
        self.warm(port, TRACK, self.files.single)
        self.closed("noop", port, TRACK, self.files.single)
        self.closed("noop_lua", port, TRACK, self.files.single, fixed=False)  # the body mode the issue doubted
        self.procs.stop(proc)

    def edge(self) -> None:
        env = self.env.process_env(EVENTPLANE_QUEUE_HIGH_WATER=str(10**9))  # no worker here: let the queue grow
        proc, port = serve(self.procs, "edge", [*python(), "eventplane.cli", "ingest"], env)
        self.rss.watch("edge", proc.pid)
        self.warm(port, TRACK, self.files.single)
        single = self.closed("edge_single", port, TRACK, self.files.single)
        reset_queue(self.env)
        self.closed("edge_batch", port, BATCH, self.files.batch, payloads.BATCH_SIZE)
        reset_queue(self.env)
        self.warm(port, flagbench.PATH, self.files.evaluate)
        self.closed("evaluate", port, flagbench.PATH, self.files.evaluate)
        self.latency(port, single.ok_per_second / 2)
        reset_queue(self.env)
        if self.profile_dir is not None:
            self.raw["profiles"] = profile.edge(proc.pid, port, self.files, self.plan.seconds, self.profile_dir)
            reset_queue(self.env)
        self.procs.stop(proc)

    def latency(self, port: int, rate: float, name: str = "latency") -> None:
        url = f"http://127.0.0.1:{port}{TRACK}"
        result = loadgen.constant(url, self.files.senders(self.files.single_bodies), rate, self.plan.latency_seconds)
        self.raw[name] = asdict(result)
        self.figures[f"{name}_rate"] = result.offered_rps
        self.figures.update({f"{name}_p50": result.p50_ms, f"{name}_p99": result.p99_ms})
        self.figures[f"{name}_p999"] = result.p999_ms
        print(f"  {name} at {result.offered_rps:,.0f}/s: p50 {result.p50_ms:.2f} p99 {result.p99_ms:.2f} "
              f"p99.9 {result.p999_ms:.2f} ms ({result.failed} failed)", flush=True)  # fmt: skip

    def noop_latency(self) -> None:
        """The same constant-rate load on the no-op app: what the generator and HTTP alone cost."""
        rate = self.figures.get("latency_rate")
        if not rate:
            return
        proc, port = serve(self.procs, "noop", [*python(), *UVICORN, "loadtests.noop:app"], self.env.process_env(), "/")
        self.warm(port, TRACK, self.files.single)
        self.latency(port, rate, "noop_latency")
        self.procs.stop(proc)

    def naive(self) -> None:
        proc, port = serve(self.procs, "naive", [*python(), *UVICORN, "loadtests.naive:app"], self.env.process_env())
        self.warm(port, TRACK, self.files.single)
        self.closed("naive", port, TRACK, self.files.single, fixed=False)
        self.procs.stop(proc)
        reset_events(self.env)

    def copy_ceiling(self) -> None:
        argv = ["taskset", "-c", str(SERVER_CORE), *python(), "loadtests.copy_ceiling", str(self.plan.seconds)]
        out = subprocess.run(argv, env=self.env.process_env(), check=True, capture_output=True, text=True).stdout
        data = orjson.loads(out.splitlines()[-1])
        self.figures["copy_ceiling"] = data["rows"] / data["seconds"]
        self.raw["copy_ceiling"] = data
        print(f"  copy_ceiling: {self.figures['copy_ceiling']:,.0f} rows/s", flush=True)
        reset_events(self.env)

    def pipeline(self) -> None:
        self._pipeline("pipeline")

    def preloaded(self) -> None:
        """The pipeline again, on top of `preload_events` events and their ledger rows already stored, at
        the rate the empty-database row sustained (when it ran in this run)."""
        reset_events(self.env)
        seconds = asyncio.run(preload.preload(self.env.database_url, self.plan.preload_events))
        self.figures["preload_seconds"] = seconds
        print(f"  preloaded {self.plan.preload_events:,} events and ledger rows in {seconds:.0f} s", flush=True)
        self._pipeline("preloaded", self.raw.get("pipeline", {}).get("offered_events_per_s"))
        reset_events(self.env)

    def _pipeline(self, name: str, rate: float | None = None) -> None:
        """Probe (closed loop), calibrate, then the sustained row; with `rate`, sustain that rate instead."""
        env = self.env.process_env(EVENTPLANE_QUEUE_HIGH_WATER=str(self.plan.pipeline_high_water))
        edge, port = serve(self.procs, f"edge-{name}", [*python(), "eventplane.cli", "ingest"], env)
        worker = self.procs.start(f"worker-{name}", [*python(), "eventplane.cli", "worker"], env)
        self.rss.watch("edge", edge.pid)
        self.rss.watch("worker", worker.pid)
        url = f"http://127.0.0.1:{port}{BATCH}"
        probe = pipeline.probe(self.env, url, self.files.keys, self.files.batch, self.plan.probe_seconds, 100)
        self.figures[f"{name}_saturated"] = probe.stored_per_s
        self.figures[f"{name}_probe_requests"] = probe.accepted_per_s / payloads.BATCH_SIZE
        self.raw[f"{name}_probe"] = asdict(probe)
        print(f"  {name} probe: stored {probe.stored_per_s:,.0f}/s while accepting "
              f"{probe.accepted_per_s:,.0f}/s", flush=True)  # fmt: skip
        self.raw[f"{name}_probe_drain_s"] = pipeline.drain(self.env)
        files = (self.files.keys, self.files.batch)
        if rate is None:
            rate = max(payloads.BATCH_SIZE, probe.stored_per_s * self.plan.pipeline_fraction)
            cal = pipeline.calibrate(self.env, url, files, rate, self.plan.calibrate_seconds, payloads.BATCH_SIZE)
            self.raw[f"{name}_calibration"] = asdict(cal)
            print(f"  {name} calibration: offered {rate:,.0f}/s, stored {cal.stored_per_s:,.0f}/s, queue grew "
                  f"by {cal.depth_growth:,}; sustained rate {cal.chosen_per_s:,.0f}/s", flush=True)  # fmt: skip
            rate = cal.chosen_per_s
        pids = {"edge": edge.pid, "worker": worker.pid, **server_pids(self.env)}
        result = pipeline.sustained(
            self.env, url, files, rate, self.plan.pipeline_seconds, payloads.BATCH_SIZE, cpu_of=pids
        )
        for k, us in result.cpu_us_per_event.items():
            self.figures[f"{name}_cpu_us_{k}"] = us
        print(f"  {name} CPU per event: " + ", ".join(f"{k} {us:.1f} us" for k, us in result.cpu_us_per_event.items()))
        self.raw[name] = {**asdict(result), "bounded": result.bounded}
        lag = "lag" if name == "pipeline" else f"{name}_lag"
        self.figures.update({name: result.stored_per_s, f"{lag}_p50": result.lag_p50_s, f"{lag}_p99": result.lag_p99_s})
        self.figures[f"{name}_max_depth" if name != "pipeline" else "queue_max_depth"] = result.max_depth
        print(f"  {name}: offered {result.offered_events_per_s:,.0f}/s, stored {result.stored_per_s:,.0f}/s "
              f"for {result.seconds:.0f} s, max depth {result.max_depth:,}, lag p50 {result.lag_p50_s} "
              f"p99 {result.lag_p99_s} s", flush=True)  # fmt: skip
        self.procs.stop(edge)
        self.procs.stop(worker)

    def instances(self) -> None:
        two_instances.measure(self)  # loadtests/instances.py


STEPS = ("generator", "noop", "edge", "noop_latency", "naive", "copy_ceiling", "pipeline", "preloaded", "instances")


def run(plan: Plan, out_dir: Path, profile_dir: Path | None, mode: str, rows: tuple[str, ...] = STEPS) -> Path:
    loadgen.ensure_tools()
    started, loadavg = time.monotonic(), os.getloadavg()
    with servers_for_run() as env, Procs(env.work_dir / "logs") as procs, PeakRss() as rss:
        files = prepare(env, plan)
        bench = Bench(env, procs, plan, files, rss, profile_dir)
        for step in [getattr(bench, name) for name in STEPS if name in rows]:
            print(f"{step.__name__} ...", flush=True)
            step()
        bench.figures["edge_rss_mb"] = rss.peak_mb.get("edge")
        bench.figures["worker_rss_mb"] = rss.peak_mb.get("worker")
    lines = targets.lines(bench.figures, bench.raw)
    print("\n" + report.table(lines))
    stamp = report.timestamp()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / f"{stamp}.json", out_dir / f"{stamp}.png"
    meta = {"started_utc": stamp, "mode": mode, "plan": asdict(plan), "seconds": time.monotonic() - started}
    meta["rows"] = list(rows)
    meta["loadavg_at_start"] = loadavg
    meta["placement"] = "servers on core 0 (taskset -c 0), load generators on core 1"
    report.write_json(json_path, lines, {**meta, "figures": bench.figures}, bench.raw)
    git = report.git_state()
    title = f"EventPlane bench {stamp}  {git['commit'][:10]}{' (dirty)' if git['dirty'] else ''}"
    report.chart(png_path, bench.figures, targets.UNITS, title)
    print(f"\nwrote {json_path} and {png_path.name} ({time.monotonic() - started:.0f} s)")
    return json_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--smoke", action="store_true", help="a few seconds per row; checks the harness only")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON and PNG")
    p.add_argument("--profile", type=Path, metavar="DIR", help="also profile the edge with py-spy into DIR")
    p.add_argument("--rows", default=",".join(STEPS), help=f"comma-separated steps to run (default all: {STEPS})")
    p.add_argument("--seconds", type=float, help="seconds of each closed-loop row (full: 10)")
    p.add_argument("--pipeline-seconds", type=float, help="seconds of each sustained pipeline row (full: 60)")
    p.add_argument("--preload", type=int, help="events stored before the preloaded row (full: 20,000,000)")
    args = p.parse_args(argv)
    rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
    if unknown := [r for r in rows if r not in STEPS]:
        p.error(f"unknown rows {unknown}; choose from {STEPS}")
    plan = SMOKE if args.smoke else FULL
    overrides = {"seconds": args.seconds, "pipeline_seconds": args.pipeline_seconds, "preload_events": args.preload}
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    full = plan == FULL and rows == STEPS
    install_signal_handlers()
    try:
        run(plan, args.out, args.profile, "smoke" if args.smoke else "full" if full else "partial", rows)
    except KeyboardInterrupt:
        print("interrupted; every process the bench started has been stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
