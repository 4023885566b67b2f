"""`make soak`: the whole stack for a long time at half its sustained rate, and whether anything grows.

    SOAK_SECONDS=600 python -m loadtests.soak      # the default: 10 minutes (plus about a minute around it)
    python -m loadtests.soak --seconds 180 --rate 7000

Placement as in `make bench`: edge, worker, Postgres and Valkey on core 0, wrk on core 1, paced by post.lua
(batches of 100 events, a fresh message id per event). The rate, unless given (--rate or SOAK_RATE, in
events/s): half of `pipeline` in the newest full bench result under loadtests/results/.

Sampled every second: the edge's and the worker's RSS (psutil, children included), the queue depth in
events, events stored. After the run, once the queue has drained: the lag `commit time - received_at` of
every stored event (Postgres's commit timestamps, as the bench), as p50/p99 per 10 s of receipt.

Pass when, after the warm-up (the first 20% of the run, at most 60 s): each process's RSS grows by less
than 10% (the mean of the last tenth of the samples against the mean of the first tenth after warm-up),
the queue never holds more than 2 s of the offered rate, wrk saw 0 errors, nothing was dead-lettered,
and every accepted event was stored. Writes loadtests/results/soak-<UTC>.json and .svg (RSS, depth and
lag over time); exits 1 on a fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil

from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from loadtests import loadgen, payloads, pipeline, report
from loadtests.bench import BATCH, prepare, serve
from loadtests.bench import FULL as BENCH_PLAN
from loadtests.stack import Env, Procs, install_signal_handlers, python, servers_for_run

RESULTS = Path(__file__).resolve().parent / "results"
RSS_GROWTH_LIMIT = 0.10
LAG_BUCKET_SECONDS = 10
LAG_SQL = f"""
SELECT floor(extract(epoch FROM received_at) / {LAG_BUCKET_SECONDS}) * {LAG_BUCKET_SECONDS} AS bucket,
       count(*)::bigint AS n,
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM pg_xact_commit_timestamp(xmin) - received_at)) AS lag
FROM events WHERE received_at >= to_timestamp($1) GROUP BY 1 ORDER BY 1
"""


@dataclass
class Series:
    """One point a second: seconds since start, edge and worker RSS (MB), queued events, stored events."""

    t: list[float] = field(default_factory=list)
    edge_mb: list[float] = field(default_factory=list)
    worker_mb: list[float] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)


def rss_mb(proc: psutil.Process) -> float:
    try:
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


async def _sample(env: Env, job: Future[Any], edge: psutil.Process, worker: psutil.Process, s: Series) -> None:
    conn = await asyncpg.connect(env.database_url)
    redis = connect_redis(env.redis_url)
    key = RedisNames(env.redis_prefix).queued_events
    origin = time.monotonic()
    try:
        while not job.done():
            s.t.append(round(time.monotonic() - origin, 2))
            s.edge_mb.append(round(rss_mb(edge), 2))
            s.worker_mb.append(round(rss_mb(worker), 2))
            s.depth.append(int(await redis.get(key) or 0))
            s.stored.append(int(await conn.fetchval(pipeline.STORED_SQL)))
            await asyncio.sleep(max(0.0, origin + len(s.t) - time.monotonic()))
    finally:
        await conn.close()
        await redis.aclose()


async def _after(env: Env, since: float) -> dict[str, Any]:
    conn = await asyncpg.connect(env.database_url)
    try:
        rows = await conn.fetch(LAG_SQL, since) if env.commit_timestamps else []
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
        stored = await conn.fetchval(pipeline.STORED_SQL)
    finally:
        await conn.close()
    lag = [(float(r["bucket"]) - since, int(r["n"]), *(r["lag"] or [None, None])) for r in rows]
    return {"lag": lag, "dead_letters": int(dead), "stored_total": int(stored)}


def growth(t: list[float], values: list[float], warmup: float) -> tuple[float, float, float]:
    """(baseline, end, growth): the means of the first and last tenth of the samples after `warmup`."""
    after = [v for x, v in zip(t, values, strict=True) if x >= warmup]
    if len(after) < 2:
        return 0.0, 0.0, 0.0
    tenth = max(1, len(after) // 10)
    base, end = sum(after[:tenth]) / tenth, sum(after[-tenth:]) / tenth
    return base, end, (end - base) / base if base else 0.0


def default_rate() -> float:
    """Half of the sustained pipeline rate of the newest full bench result."""
    if os.environ.get("SOAK_RATE"):
        return float(os.environ["SOAK_RATE"])
    for path in sorted(RESULTS.glob("2*.json"), reverse=True):
        doc = orjson.loads(path.read_bytes())
        if doc.get("mode") == "full" and doc.get("figures", {}).get("pipeline"):
            rate = float(doc["figures"]["pipeline"]) / 2
            print(f"rate: half of `pipeline` in {path.name}: {rate:,.0f} events/s", flush=True)
            return rate
    raise SystemExit("no full bench result in loadtests/results: give --rate (events/s) or SOAK_RATE")


def run(seconds: float, rate: float, out_dir: Path, label: str) -> bool:
    loadgen.ensure_tools()
    started = time.monotonic()
    with servers_for_run() as env, Procs(env.work_dir / "logs") as procs:
        files = prepare(env, BENCH_PLAN)
        penv = env.process_env(EVENTPLANE_QUEUE_HIGH_WATER=str(BENCH_PLAN.pipeline_high_water))
        edge, port = serve(procs, "edge", [*python(), "eventplane.cli", "ingest"], penv)
        worker = procs.start("worker", [*python(), "eventplane.cli", "worker"], penv)
        url = f"http://127.0.0.1:{port}{BATCH}"
        series = Series()
        t0 = time.time()
        print(f"soak: {rate:,.0f} events/s for {seconds:.0f} s", flush=True)
        with ThreadPoolExecutor(1) as pool:
            job = pool.submit(loadgen.wrk, url, files.keys, files.batch, seconds, rate=rate / payloads.BATCH_SIZE)
            asyncio.run(_sample(env, job, psutil.Process(edge.pid), psutil.Process(worker.pid), series))
            closed = job.result()
        drain_s = pipeline.drain(env, timeout=120)
        after = asyncio.run(_after(env, t0))
        procs.stop(edge)
        procs.stop(worker)
    warmup = min(60.0, seconds * 0.2)
    accepted = (closed.requests - closed.errors) * payloads.BATCH_SIZE
    checks: dict[str, Any] = {}
    for name, values in (("edge", series.edge_mb), ("worker", series.worker_mb)):
        base, end, grew = growth(series.t, values, warmup)
        checks[f"{name}_rss"] = {"baseline_mb": base, "end_mb": end, "growth": grew, "pass": grew < RSS_GROWTH_LIMIT}
    max_depth = max((d for x, d in zip(series.t, series.depth, strict=True) if x >= warmup), default=0)
    checks["depth"] = {"max_after_warmup": max_depth, "limit": 2 * rate, "pass": max_depth <= 2 * rate}
    checks["errors"] = {"wrk_errors": closed.errors, "dead_letters": after["dead_letters"],
                        "pass": closed.errors == 0 and after["dead_letters"] == 0}  # fmt: skip
    checks["stored"] = {"accepted": accepted, "stored": after["stored_total"], "drain_seconds": drain_s,
                        "pass": after["stored_total"] == accepted}  # fmt: skip
    lag_p99 = [x[3] for x in after["lag"] if x[0] >= warmup and x[3] is not None]
    checks["lag"] = {"worst_p99_per_10s_after_warmup": max(lag_p99, default=None)}
    passed = all(c.get("pass", True) for c in checks.values())
    stamp = report.timestamp()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, svg_path = out_dir / f"soak-{stamp}.json", out_dir / f"soak-{stamp}.svg"
    doc = {
        "started_utc": stamp, "label": label, "seconds": seconds, "rate_events_per_s": rate,
        "warmup_seconds": warmup, "pass": passed, "checks": checks, "wall_seconds": time.monotonic() - started,
        "placement": "servers on core 0 (taskset -c 0), wrk on core 1", "git": report.git_state(),
        "machine": report.machine(), "wrk": asdict(closed), "series": asdict(series),
        "lag_per_10s": [{"t": x[0], "events": x[1], "p50_s": x[2], "p99_s": x[3]} for x in after["lag"]],
    }  # fmt: skip
    json_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    commit = str(report.git_state()["commit"])[:10]
    chart(svg_path, series, after["lag"], warmup, f"EventPlane soak {stamp} {commit} {label}")
    for name, c in checks.items():
        verdict = {True: "PASS", False: "FAIL", None: ""}[c.get("pass")]
        print(f"  {name:11} {verdict:4}  {orjson.dumps(c).decode()}")
    print(f"{'PASS' if passed else 'FAIL'}; wrote {json_path} and {svg_path.name} ({time.monotonic() - started:.0f} s)")
    return passed


def chart(path: Path, s: Series, lag: list[tuple[Any, ...]], warmup: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, depth, lat) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    mem.plot(s.t, s.edge_mb, label="edge")
    mem.plot(s.t, s.worker_mb, label="worker")
    mem.set_ylabel("RSS (MB)")
    mem.set_ylim(bottom=0)
    mem.legend(loc="lower right")
    depth.plot(s.t, s.depth, color="#d62728")
    depth.set_ylabel("queued events")
    depth.set_ylim(bottom=0)
    lat.plot([x[0] for x in lag], [x[2] for x in lag], label="p50")
    lat.plot([x[0] for x in lag], [x[3] for x in lag], label="p99")
    lat.set_ylabel("lag (s), per 10 s")
    lat.set_xlabel("seconds since start")
    lat.legend(loc="upper right")
    for ax in (mem, depth, lat):
        ax.axvline(warmup, color="#999999", linestyle="--", linewidth=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 600))
    p.add_argument("--rate", type=float, help="events/s (default: SOAK_RATE, or half the last full bench's pipeline)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--label", default="", help="a word for the chart's title and the JSON (e.g. 'short check')")
    args = p.parse_args(argv)
    install_signal_handlers()
    try:
        ok = run(args.seconds, args.rate or default_rate(), args.out, args.label)
    except KeyboardInterrupt:
        print("interrupted; every process the soak started has been stopped", file=sys.stderr)
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
