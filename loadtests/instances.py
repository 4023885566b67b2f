"""The `instances` rows of `make bench`: events stored per second with two instances, beside one instance
measured the same way in the same run, and what the hub costs the edge per request.

Both measurements run the same edge under the same closed loop (wrk on /batch, 100 events a request,
every bench key) for the probe's duration, and count events stored per second in every instance's
`usage_daily`:
- `instances_one`: every workspace on the default instance (the bench's Postgres and Valkey), one worker.
- `instances_two`: half the workspaces placed on a second instance (its own embedded Postgres and
  Valkey), a worker per instance (`eventplane worker --instance b`).
Every server process runs on the server core, as for the other rows: the ratio says what splitting the
data across instances costs or gains on one core (the routing, a second set of servers), not what a
second machine adds; see docs/scaling.md for the model built from these figures.

`hub_reads_per_request`: the edge's key-cache misses (each a read of the hub's Redis, and of its
Postgres on a miss there too) per tracking request during `instances_two`, from the edge's /metrics.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from eventplane import instances, servers
from loadtests import loadgen
from loadtests.stack import SERVER_CORE, pin, python, reset_events, reset_queue

if TYPE_CHECKING:
    from loadtests.bench import Bench

BATCH = "/api/v1/tracking/batch"
STORED = "SELECT coalesce(sum(events), 0)::bigint FROM usage_daily"


async def _stored(urls: list[str]) -> int:
    total = 0
    for url in urls:
        conn = await asyncpg.connect(url)
        try:
            total += await conn.fetchval(STORED)
        finally:
            await conn.close()
    return total


def _stored_per_s(urls: list[str], run: Any, seconds: float) -> tuple[float, Any]:
    """Run `run()` (a wrk closed loop) and measure events stored per second in `urls` meanwhile, from the
    moment every instance has stored something (its worker is up) to the end."""
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(run)
        while not job.done() and not asyncio.run(_all_storing(urls)):
            time.sleep(0.1)
        first_at, first = time.monotonic(), asyncio.run(_stored(urls))
        while not job.done():
            time.sleep(0.25)
        last_at, last = time.monotonic(), asyncio.run(_stored(urls))
        result = job.result()
    return (last - first) / max(last_at - first_at, 1e-9), result


async def _all_storing(urls: list[str]) -> bool:
    for url in urls:
        if await _stored([url]) == 0:
            return False
    return True


def _misses_and_requests(port: int) -> tuple[float, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    misses = sum(
        float(m) for m in re.findall(r'eventplane_ingest_key_cache_lookups_total\{result="miss"\} (\S+)', text)
    )
    requests = sum(float(m) for m in re.findall(r"eventplane_ingest_requests_total\{[^}]*\} (\S+)", text))
    return misses, requests


async def _place_half(hub: str, b_url: str, redis_url: str, workspace_ids: list[str]) -> None:
    conn = await asyncpg.connect(hub)
    try:
        await instances.add(conn, "b", b_url, redis_url)
        await conn.execute("UPDATE workspaces SET instance = 'b' WHERE id = ANY($1::uuid[])", workspace_ids)
    finally:
        await conn.close()


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE events, event_ids, usage_daily, dead_letters")
    finally:
        await conn.close()


def measure(bench: Bench) -> None:
    from loadtests.bench import serve

    env, procs, plan, files = bench.env, bench.procs, bench.plan, bench.files
    seconds = plan.probe_seconds
    process_env = env.process_env(EVENTPLANE_QUEUE_HIGH_WATER=str(plan.pipeline_high_water),
                                  EVENTPLANE_WORKER_METRICS_PORT="0")  # fmt: skip

    def run(port: int) -> Callable[[], loadgen.Closed]:
        return lambda: loadgen.wrk(f"http://127.0.0.1:{port}{BATCH}", files.keys, files.batch, seconds)

    reset_queue(env)
    reset_events(env)
    edge, port = serve(procs, "edge-instances-one", [*python(), "eventplane.cli", "ingest"], process_env)
    worker = procs.start("worker-instances-one", [*python(), "eventplane.cli", "worker"], process_env)
    one, closed = _stored_per_s([env.database_url], run(port), seconds)
    procs.stop(edge)
    procs.stop(worker)
    print(f"  instances_one: stored {one:,.0f}/s ({closed.errors} failed requests)", flush=True)

    b_dir = env.work_dir / "instance-b"
    b_db, _ = servers.ensure_postgres(b_dir / "postgres")
    b_redis, _ = servers.ensure_valkey(b_dir / "valkey")
    try:
        for pid in (servers._postmaster_pid(b_dir / "postgres"), servers._valkey_pid(b_dir / "valkey")):
            if pid is not None:
                pin(pid, SERVER_CORE)
        _measure_two(bench, process_env, run, one, b_dir, b_db, b_redis)
    finally:
        servers.stop(b_dir)


def _measure_two(bench: Bench, process_env: dict[str, str], run: Any, one: float, b_dir: Path, b_db: str,
                 b_redis: str) -> None:  # fmt: skip
    from loadtests.bench import serve

    env, procs, seconds = bench.env, bench.procs, bench.plan.probe_seconds
    reset_queue(env)  # also the key cache in Redis: the edges read the new placement from Postgres
    reset_events(env)
    made = bench.files.key_list  # keys; their workspaces are found in the hub
    ids = asyncio.run(_workspaces_of(env.database_url))
    asyncio.run(_place_half(env.database_url, b_db, b_redis, ids[: len(ids) // 2]))
    edge, port = serve(procs, "edge-instances-two", [*python(), "eventplane.cli", "ingest"], process_env)
    workers = [
        procs.start("worker-instances-a", [*python(), "eventplane.cli", "worker"], process_env),
        procs.start("worker-instances-b", [*python(), "eventplane.cli", "worker", "--instance", "b"], process_env),
    ]
    two, closed = _stored_per_s([env.database_url, b_db], run(port), seconds)
    misses, requests = _misses_and_requests(port)
    procs.stop(edge)
    for worker in workers:
        procs.stop(worker)
    asyncio.run(_truncate(b_db))
    bench.figures["instances_one"] = one
    bench.figures["instances_two"] = two
    bench.figures["hub_reads_per_request"] = misses / max(requests, 1.0)
    bench.raw["instances"] = {"one": one, "two": two, "failed_requests": closed.errors, "keys": len(made),
                              "key_cache_misses": misses, "requests": requests}  # fmt: skip
    print(f"  instances_two: stored {two:,.0f}/s ({two / max(one, 1e-9):.2f}x one instance); hub reads per "
          f"request {misses / max(requests, 1.0):.5f}", flush=True)  # fmt: skip


def main() -> None:
    """`python -m loadtests.instances`: only these rows, with the full bench's durations."""
    from loadtests.bench import FULL, Bench, prepare
    from loadtests.rss import PeakRss
    from loadtests.stack import Procs, servers_for_run

    loadgen.ensure_tools()
    with servers_for_run() as env, Procs(env.work_dir / "logs") as procs, PeakRss() as rss:
        bench = Bench(env, procs, FULL, prepare(env, FULL), rss, None)
        measure(bench)
    print({k: round(v, 4) if v is not None else None for k, v in bench.figures.items()})


async def _workspaces_of(hub: str) -> list[str]:
    conn = await asyncpg.connect(hub)
    try:
        return [str(r[0]) for r in await conn.fetch("SELECT id FROM workspaces ORDER BY id")]
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
