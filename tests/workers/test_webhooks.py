"""Webhook delivery against a real receiver: order, signatures, filters, retries with backoff, pausing,
and the receiver down for 30 s while the worker is killed."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from eventplane import workspace_config
from eventplane.settings import Settings
from tests.conftest import Tenant, drain, make_tenant
from tests.workers.webhook_receiver import Receiver, verify
from workers.webhooks import Deliverer, sign

BATCH = "/api/v1/tracking/batch"


@pytest.fixture
def fast(settings: Settings) -> Settings:
    # The receivers listen on 127.0.0.1: internal addresses allowed, as a self-hoster's would be.
    return replace(
        settings, webhook_retry_base=0.2, webhook_retry_max=0.5, webhook_timeout=2.0, webhook_batch_size=3,
        webhook_allow_private=True,
    )  # fmt: skip


@pytest_asyncio.fixture
async def hooked(pool: asyncpg.Pool) -> AsyncIterator[Tenant]:
    """A tenant whose destinations are removed afterwards (so no other test's run delivers to them)."""
    tenant = await make_tenant(pool)
    yield tenant
    async with pool.acquire() as conn:
        await workspace_config.replace_webhooks(conn, tenant.workspace_id, [], allow_private=False)


async def add_hook(pool: asyncpg.Pool, tenant: Tenant, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    async with pool.acquire() as conn:
        hooks = await workspace_config.replace_webhooks(
            conn, tenant.workspace_id, [{"url": receiver.url, **extra}], allow_private=True
        )
    receiver.secret = hooks[0]["signing_secret"]
    return hooks[0]


async def send(edge: httpx.AsyncClient, tenant: Tenant, types: list[str]) -> list[str]:
    request = uuid.uuid4().hex[:10]
    ids = [f"m-{request}-{999 - i}" for i in range(len(types))]  # message ids sort against the sending order
    base = dt.datetime.now(dt.UTC)
    events = [
        {
            "event_type": t,
            "user_id": "u1",
            "message_id": m,
            "timestamp": (base + dt.timedelta(milliseconds=i)).isoformat(),
        }
        for i, (t, m) in enumerate(zip(types, ids, strict=True))
    ]
    response = await edge.post(BATCH, headers=tenant.headers, json={"events": events})
    assert response.status_code == 202, response.text
    return ids


async def until(condition: Callable[[], Awaitable[bool]], within: float, step: Callable[[], Awaitable[Any]]) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await step()
        await asyncio.sleep(0.02)


async def run_deliverer(pool: asyncpg.Pool, settings: Settings) -> int:
    async with httpx.AsyncClient(timeout=settings.webhook_timeout) as client:
        return await Deliverer(pool, client, settings).run(budget=1.0)


async def pending(pool: asyncpg.Pool, hook_id: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM webhook_outbox WHERE destination_id = $1", uuid.UUID(hook_id)))


def test_signature_is_stripe_style() -> None:
    value = sign("whsec_x", 1700000000, b'{"a":1}')
    assert value.startswith("t=1700000000,v1=") and len(value.split("v1=")[1]) == 64
    assert verify("whsec_x", value, b'{"a":1}', now=1700000000)
    assert not verify("whsec_y", value, b'{"a":1}', now=1700000000)
    assert not verify("whsec_x", value, b'{"a":2}', now=1700000000)


async def test_batches_arrive_signed_in_order(
    pool: asyncpg.Pool, settings: Settings, fast: Settings, edge: httpx.AsyncClient, hooked: Tenant
) -> None:
    async with Receiver().serving() as receiver:
        hook = await add_hook(pool, hooked, receiver)
        sent = await send(edge, hooked, ["a"] * 4) + await send(edge, hooked, ["b"] * 3)
        await drain(settings)
        await until(lambda: _true(receiver.message_ids == sent), 10, lambda: run_deliverer(pool, fast))
    assert receiver.bad_signatures == 0
    assert [len(b["events"]) for b in receiver.batches] == [3, 3, 1]  # webhook_batch_size = 3
    assert {b["workspace_id"] for b in receiver.batches} == {hooked.workspace_id}
    assert receiver.batches[0]["events"][0]["event_type"] == "a" and receiver.batches[0]["events"][0]["user_id"] == "u1"
    assert await pending(pool, hook["id"]) == 0


async def test_event_type_filter(
    pool: asyncpg.Pool, settings: Settings, fast: Settings, edge: httpx.AsyncClient, hooked: Tenant
) -> None:
    async with Receiver().serving() as receiver:
        await add_hook(pool, hooked, receiver, event_types=["signup"])
        sent = await send(edge, hooked, ["page_view", "signup", "click", "signup"])
        await drain(settings)
        await until(lambda: _true(len(receiver.message_ids) == 2), 10, lambda: run_deliverer(pool, fast))
    assert receiver.message_ids == [sent[1], sent[3]]


async def test_a_500_is_retried_with_backoff_and_logged(
    pool: asyncpg.Pool, settings: Settings, fast: Settings, edge: httpx.AsyncClient, hooked: Tenant
) -> None:
    async with Receiver().serving() as receiver:
        hook = await add_hook(pool, hooked, receiver)
        receiver.fail_next = 2
        sent = await send(edge, hooked, ["a", "b"])
        await drain(settings)
        await until(lambda: _true(receiver.message_ids == sent), 10, lambda: run_deliverer(pool, fast))
    gaps = [b - a for a, b in zip(receiver.attempt_times, receiver.attempt_times[1:], strict=False)]
    assert len(receiver.attempt_times) == 3
    assert gaps[0] >= 0.2 * 0.8 and gaps[1] >= 0.4 * 0.8  # doubling from webhook_retry_base
    rows = await pool.fetch(
        "SELECT ok, status_code, events FROM webhook_deliveries WHERE destination_id = $1 ORDER BY id",
        uuid.UUID(hook["id"]),
    )
    assert [tuple(r) for r in rows] == [(False, 500, 2), (False, 500, 2), (True, 204, 2)]
    async with pool.acquire() as conn:
        (state,) = await workspace_config.get_webhooks(conn, hooked.workspace_id)
    assert (state["failures_total"], state["consecutive_failures"], state["delivered_total"]) == (2, 0, 2)


async def test_a_destination_failing_for_long_is_paused_then_resumed(
    pool: asyncpg.Pool, settings: Settings, fast: Settings, edge: httpx.AsyncClient, hooked: Tenant
) -> None:
    short = replace(fast, webhook_pause_after=0.5)
    async with Receiver().serving() as receiver:
        hook = await add_hook(pool, hooked, receiver)
        receiver.fail_next = 10**6
        sent = await send(edge, hooked, ["a"])
        await drain(settings)

        async def paused() -> bool:
            async with pool.acquire() as conn:
                return bool((await workspace_config.get_webhooks(conn, hooked.workspace_id))[0]["status"] == "paused")

        await until(paused, 10, lambda: run_deliverer(pool, short))
        attempts = len(receiver.attempt_times)
        await send(edge, hooked, ["while-paused"])
        await drain(settings)
        await run_deliverer(pool, short)
        assert len(receiver.attempt_times) == attempts  # not retried forever
        assert await pending(pool, hook["id"]) == 1  # its queue is kept; nothing new is queued while paused

        receiver.fail_next = 0
        async with pool.acquire() as conn:  # re-enabling (PUT with its id) resumes it
            await workspace_config.replace_webhooks(
                conn, hooked.workspace_id, [{"id": hook["id"], "url": receiver.url}], allow_private=True
            )
        await until(lambda: _true(receiver.message_ids == sent), 10, lambda: run_deliverer(pool, short))


async def _true(value: bool) -> bool:
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(settings: Settings, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.dsn,
        "REDIS_URL": settings.redis_dsn,
        "EVENTPLANE_REDIS_PREFIX": prefix,
        "EVENTPLANE_DATA_DIR": str(settings.data_dir),
        "EVENTPLANE_WORKER_METRICS_PORT": "0",
        "EVENTPLANE_WORKER_POLL_DELAY": "0.05",
        "EVENTPLANE_JOB_TIMEOUT": "5",
        "EVENTPLANE_WEBHOOK_RETRY_BASE": "0.5",
        "EVENTPLANE_WEBHOOK_RETRY_MAX": "2",
        "EVENTPLANE_WEBHOOK_TIMEOUT": "1",
        "EVENTPLANE_WEBHOOK_BATCH_SIZE": "7",
        "EVENTPLANE_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on 127.0.0.1
        "EVENTPLANE_LOG_LEVEL": "ERROR",
    }
    return subprocess.Popen([sys.executable, "-m", "workers"], env=env, stdout=subprocess.DEVNULL)


async def test_receiver_down_30_s_and_worker_killed_loses_nothing(
    pool: asyncpg.Pool, settings: Settings, edge: httpx.AsyncClient, hooked: Tenant
) -> None:
    receiver = Receiver()
    receiver.port = _free_port()  # nobody listens there yet: connection refused
    hook = await add_hook(pool, hooked, receiver)
    worker = _worker(settings, f"{settings.redis_prefix}wh{uuid.uuid4().hex[:4]}:")
    try:
        sent = await send(edge, hooked, [f"e{i}" for i in range(30)])
        await drain(settings)
        down_since = time.monotonic()

        async def failed_twice() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT failures_total >= 2 FROM webhook_destinations WHERE id = $1", uuid.UUID(hook["id"])
                )
            )

        await until(failed_twice, 20, lambda: asyncio.sleep(0.1))  # the worker is trying, and failing
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        sent += await send(edge, hooked, [f"late{i}" for i in range(10)])  # stored while no worker runs
        await drain(settings)
        worker = _worker(settings, f"{settings.redis_prefix}wh{uuid.uuid4().hex[:4]}:")
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - down_since)))  # the receiver's 30 s of downtime
        async with receiver.serving(receiver.port):
            await until(lambda: _true(set(sent) <= set(receiver.message_ids)), 30, lambda: asyncio.sleep(0.1))
    finally:
        worker.kill()
        worker.wait(10)
    assert receiver.bad_signatures == 0
    assert await pending(pool, hook["id"]) == 0
    delivered = receiver.message_ids
    assert sorted(set(delivered)) == sorted(sent)
    first_seen = list(dict.fromkeys(delivered))
    assert first_seen == sent  # in order (a resent batch may repeat, never reorder)


async def test_an_internal_destination_is_refused_at_delivery_and_logged(
    pool: asyncpg.Pool, settings: Settings, fast: Settings, edge: httpx.AsyncClient, hooked: Tenant
) -> None:
    """A destination that passed when saved (allowed then, or a name re-pointed since) is checked again at
    each delivery: by default nothing reaches 127.0.0.1, and the attempt is a logged failure, not a drop."""
    strict = replace(fast, webhook_allow_private=False)
    async with Receiver().serving() as receiver:
        hook = await add_hook(pool, hooked, receiver)
        localhost = receiver.url.replace("127.0.0.1", "localhost")  # a name resolving to loopback
        async with pool.acquire() as conn:
            await workspace_config.replace_webhooks(
                conn, hooked.workspace_id, [{"id": hook["id"], "url": localhost}], allow_private=True
            )
        await send(edge, hooked, ["a", "b"])
        await drain(settings)

        async def failed() -> bool:
            count = await pool.fetchval(
                "SELECT failures_total FROM webhook_destinations WHERE id = $1", uuid.UUID(hook["id"])
            )
            return bool(count >= 1)

        await until(failed, 10, lambda: run_deliverer(pool, strict))
        assert receiver.attempt_times == []
        row = await pool.fetchrow(
            "SELECT ok, status_code, events, error FROM webhook_deliveries WHERE destination_id = $1 "
            "ORDER BY id LIMIT 1",
            uuid.UUID(hook["id"]),
        )
        assert row is not None and (row["ok"], row["status_code"], row["events"]) == (False, None, 2)
        assert "refused" in row["error"] and "loopback" in row["error"] and "localhost" in row["error"]
        assert await pending(pool, hook["id"]) == 2  # kept for when the destination is fixed
        # The operator's setting lets the same destination through.
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE webhook_destinations SET next_attempt_at = now() WHERE id = $1", uuid.UUID(hook["id"])
            )
        await until(lambda: _true(len(receiver.message_ids) == 2), 10, lambda: run_deliverer(pool, fast))
