"""Break a real stack under load; every event that got 202 is stored exactly once.

Each test runs the edge and workers as processes against an embedded Postgres and Valkey of its own
(never the shared or system servers), sends events with unique message_ids while the fault happens
(retrying batches that get 503 or a broken connection, as SDKs do), then counts the rows.
"""

from __future__ import annotations

import asyncio
import signal
import time

from eventplane import servers
from tests.faults.conftest import FIGURES
from tests.faults.stack import Stack, Tally, make_key, send_until_acknowledged, stored_ids, wait_stored


def record(name: str, tally: Tally, rows: int, distinct: int, extra: str = "") -> None:
    FIGURES.append(
        f"{name}: sent={tally.sent} acknowledged={tally.acknowledged} 503s={tally.refused_503} "
        f"transport_errors={tally.transport_errors} stored={rows} duplicates={rows - distinct} {extra}".rstrip()
    )


async def _stored_count(stack: Stack, workspace_id: str) -> int:
    rows, _ = await wait_stored(stack.database_url, workspace_id, expected=0, limit=0)
    return rows


async def test_worker_killed_mid_batch(stack: Stack) -> None:
    workspace_id, key = await make_key(stack)
    await stack.start_edge()
    first = stack.spawn("worker")
    total = 20_000
    sending = asyncio.create_task(send_until_acknowledged(stack.port, key, total, batch=200, concurrency=8))
    at_kill = 0
    while at_kill == 0:  # kill once the worker is storing, with more batches still queued
        await asyncio.sleep(0.05)
        at_kill = await _stored_count(stack, workspace_id)
    first.send_signal(signal.SIGKILL)
    first.wait()
    stack.spawn("worker")
    tally, acked = await sending
    rows, distinct = await wait_stored(stack.database_url, workspace_id, expected=len(acked), limit=90)
    record("worker SIGKILL", tally, rows, distinct, f"stored_when_killed={at_kill}")
    assert tally.other == [], stack.logs()
    assert len(acked) == total
    assert (rows, distinct) == (total, total), stack.logs()
    assert at_kill < total


async def test_postgres_stopped_for_20_seconds_under_load(stack: Stack) -> None:
    workspace_id, key = await make_key(stack)
    await stack.start_edge()
    worker = stack.spawn("worker")
    # About 400 events/s for about 30 s, so the outage falls in the middle of the load.
    sending = asyncio.create_task(send_until_acknowledged(stack.port, key, 12_000, batch=20, concurrency=2, pace=0.1))
    await asyncio.sleep(3)
    servers.stop_postgres(stack.pg_dir)
    down_at = time.monotonic()
    await asyncio.sleep(20)
    stack.database_url, _ = servers.ensure_postgres(stack.pg_dir)
    outage = time.monotonic() - down_at
    tally, acked = await sending
    rows, distinct = await wait_stored(stack.database_url, workspace_id, expected=len(acked), limit=90)
    record("postgres down", tally, rows, distinct, f"outage={outage:.0f}s")
    assert tally.other == [], stack.logs()
    assert worker.poll() is None, f"the worker should ride out the outage\n{stack.logs()}"
    assert (rows, distinct) == (len(acked), len(acked)) == (12_000, 12_000), stack.logs()


async def test_redis_unavailable_gives_503_then_recovers(stack: Stack) -> None:
    workspace_id, key = await make_key(stack)
    await stack.start_edge()
    worker = stack.spawn("worker")
    sending = asyncio.create_task(send_until_acknowledged(stack.port, key, 6_000, batch=20, concurrency=2, pace=0.1))
    await asyncio.sleep(2)
    servers.stop_valkey(stack.valkey_dir)  # SIGTERM: Valkey writes its AOF and exits
    await asyncio.sleep(5)
    servers.ensure_valkey(stack.valkey_dir)
    tally, acked = await sending
    rows, distinct = await wait_stored(stack.database_url, workspace_id, expected=len(acked), limit=60)
    record("redis down", tally, rows, distinct)
    assert tally.refused_503 > 0, "the outage should have been answered with 503s"
    assert tally.other == [], f"no status but 202 and 503 expected, got {set(tally.other)}"
    assert worker.poll() is None, f"the worker should reconnect by itself\n{stack.logs()}"
    assert (rows, distinct) == (len(acked), len(acked)) == (6_000, 6_000), stack.logs()


async def test_edge_sigterm_drains_in_flight_requests(stack: Stack) -> None:
    workspace_id, key = await make_key(stack)
    edge = await stack.start_edge()
    stack.spawn("worker")
    sending = asyncio.create_task(send_until_acknowledged(stack.port, key, 30_000, batch=100, concurrency=16))
    await asyncio.sleep(1.0)
    edge.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(edge.wait, 30)
    await stack.start_edge()  # the client's retries reach the replacement
    tally, acked = await sending
    rows, distinct = await wait_stored(stack.database_url, workspace_id, expected=len(acked), limit=60)
    record("edge SIGTERM", tally, rows, distinct, f"exit_code={code}")
    # uvicorn drains, runs the lifespan shutdown (which flushes pending batches), then re-raises SIGTERM.
    assert code in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (stack.root / "ingest-0.log").read_text()
    assert tally.other == []
    assert (rows, distinct) == (len(acked), len(acked)) == (30_000, 30_000), stack.logs()
    assert acked <= await stored_ids(stack.database_url, workspace_id)
