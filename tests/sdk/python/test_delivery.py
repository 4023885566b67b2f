"""The SDK against the real edge, worker and Postgres: what it sends is stored once, with its fields,
across forced retries and lost responses; Retry-After is honoured; refusals are not retried."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid

import asyncpg
import pytest
from experimentation_sdk import AsyncExperimentationClient, DeliveryError, ExperimentationClient

from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from tests.sdk.python.conftest import stored
from tests.sdk.python.faults import fault_proxy


async def test_quickstart_as_written_stores_the_event(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    client = ExperimentationClient(api_key=tenant.key, base_url=edge_url)
    client.track("purchase", user_id="user-123", properties={"value": 49.99})
    when = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    client.track("click", anonymous_id="a-1", value=3, timestamp=when, message_id="m-click")
    client.identify("user-123", {"plan": "pro"})
    assert await asyncio.to_thread(client.flush, 10)
    await asyncio.to_thread(client.close)

    await drain(settings)
    rows = await stored(pool, tenant.workspace_id)
    by_type = {r["event_type"]: r for r in rows.values()}
    assert set(by_type) == {"purchase", "click", "$identify"}
    purchase = by_type["purchase"]
    assert (purchase["user_id"], json.loads(purchase["properties"])) == ("user-123", {"value": 49.99})
    uuid.UUID(purchase["message_id"])  # made by the SDK when the event was created
    assert abs((purchase["timestamp"] - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    click = rows["m-click"]
    assert (click["anonymous_id"], click["value"]) == ("a-1", 3.0)
    assert abs((click["timestamp"] - when).total_seconds()) < 1  # skew-corrected by sent_at: send latency
    assert json.loads(by_type["$identify"]["properties"]) == {"plan": "pro"}
    assert client.stats().sent == 3


async def test_batches_respect_event_count_and_body_limits_and_are_gzipped(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    async with fault_proxy(edge_url) as proxy:
        client = ExperimentationClient(tenant.key, proxy.url, flush_interval=30)
        for i in range(250):
            client.track("small", user_id=f"u{i}")
        big = "x" * 30_000
        for i in range(40):  # 40 x 30 KB: more than two bodies' worth
            client.track("big", user_id=f"u{i}", properties={"blob": big})
        assert await asyncio.to_thread(client.flush, 20)
        await asyncio.to_thread(client.close)
    assert all(s.headers["content-encoding"] == "gzip" for s in proxy.seen)
    assert max(len(s.message_ids) for s in proxy.seen) == 100
    assert max(s.raw_size for s in proxy.seen) <= 512_000
    assert len(proxy.seen) >= 5  # 290 events (100 a batch at most) of 1.2 MB (512,000 bytes a body at most)
    assert sorted(proxy.sent_ids()) == sorted(set(proxy.sent_ids()))
    await drain(settings)
    assert len(await stored(pool, tenant.workspace_id)) == 290


async def test_forced_retry_and_lost_response_store_each_event_once(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    # 1st request: 503 (not forwarded). 2nd: forwarded and stored, then the connection is closed
    # without an answer. 3rd: the same batch again, answered 202.
    async with fault_proxy(edge_url, ["503", "lose"]) as proxy:
        client = ExperimentationClient(tenant.key, proxy.url, backoff_base=0.01, flush_interval=30)
        ids = [f"m-{i}" for i in range(5)]
        for m in ids:
            client.track("retry", user_id="u1", message_id=m)
        assert await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close)
    assert [s.action for s in proxy.seen] == ["503", "lose", "forward"]
    assert all(s.message_ids == ids for s in proxy.seen)
    assert len({s.body["sent_at"] for s in proxy.seen}) == 3  # a fresh sent_at on every attempt
    assert len({s.headers["x-request-id"] for s in proxy.seen}) == 1
    assert client.stats().retries == 2
    await drain(settings)
    assert sorted(await stored(pool, tenant.workspace_id)) == ids


async def test_retry_after_is_honoured(edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings) -> None:
    async with fault_proxy(edge_url, ["429:1"]) as proxy:
        client = ExperimentationClient(tenant.key, proxy.url, backoff_base=0.01, backoff_max=0.01)
        client.track("limited", user_id="u1", message_id="m-limited")
        assert await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close)
    assert [s.action for s in proxy.seen] == ["429:1", "forward"]
    assert proxy.seen[1].at - proxy.seen[0].at >= 1.0  # without Retry-After the backoff is 10 ms at most
    await drain(settings)
    assert list(await stored(pool, tenant.workspace_id)) == ["m-limited"]


async def test_refused_batch_is_not_retried_and_reaches_on_error(
    edge_url: str, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[DeliveryError] = []
    bad_key = "ep_live_not-a-key-" + uuid.uuid4().hex
    async with fault_proxy(edge_url) as proxy:
        client = ExperimentationClient(bad_key, proxy.url, on_error=errors.append, backoff_base=0.01)
        with caplog.at_level(logging.DEBUG):
            client.track("nope", user_id="u1")
            client.track("nope", user_id="u2")
            assert not await asyncio.to_thread(client.flush, 10)
            await asyncio.to_thread(client.close, 1)
    assert "AUTH_ERROR" in caplog.text and bad_key not in caplog.text  # the log says why, never the key
    assert len([s for s in proxy.seen if s.message_ids]) == 1  # one try: a 401 cannot be fixed by retrying
    error = errors[0]
    assert (error.reason, error.count, error.status, error.code) == ("rejected", 2, 401, "AUTH_ERROR")
    stats = client.stats()
    assert (stats.failed, dict(stats.dropped), stats.sent) == (2, {"rejected": 2}, 0)


async def test_retry_budget_ends_in_a_counted_drop(edge_url: str, tenant: Tenant) -> None:
    errors: list[DeliveryError] = []
    async with fault_proxy(edge_url, ["503"] * 1000) as proxy:
        client = ExperimentationClient(
            tenant.key, proxy.url, retry_budget=0.5, backoff_base=0.05, backoff_max=0.05, on_error=errors.append
        )
        client.track("doomed", user_id="u1")
        assert not await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close, 1)
    assert len(proxy.seen) >= 2
    assert (errors[0].reason, errors[0].status, errors[0].code) == ("retry_exhausted", 503, "QUEUE_UNAVAILABLE")
    assert client.stats().dropped["retry_exhausted"] == 1


async def test_sync_mode_sends_inline_with_retries(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    async with fault_proxy(edge_url, ["503"]) as proxy:
        client = ExperimentationClient(tenant.key, proxy.url, sync_mode=True, backoff_base=0.01)
        assert await asyncio.to_thread(client.track, "inline", user_id="u1", message_id="m-inline")
        assert [s.action for s in proxy.seen] == ["503", "forward"]  # both before track returned
        await asyncio.to_thread(client.close)
    await drain(settings)
    assert list(await stored(pool, tenant.workspace_id)) == ["m-inline"]


async def test_async_client(edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings) -> None:
    async with (
        fault_proxy(edge_url, ["503"]) as proxy,
        AsyncExperimentationClient(api_key=tenant.key, api_url=proxy.url, backoff_base=0.01) as client,
    ):
        assert await client.track("async", user_id="u1", message_id="m-a1")
        assert await client.identify("u1", {"name": "Ada"}, message_id="m-a2")
        assert await client.flush(10)
        assert client.stats().sent == 2
    await drain(settings)
    rows = await stored(pool, tenant.workspace_id)
    assert sorted(rows) == ["m-a1", "m-a2"]
    assert rows["m-a2"]["event_type"] == "$identify"


async def test_many_threads_tracking_at_once_each_event_stored_once(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    client = ExperimentationClient(tenant.key, edge_url)

    def track_many(thread: int) -> None:
        for i in range(400):
            client.track("concurrent", user_id=f"u{thread}", message_id=f"t{thread}-{i}")

    await asyncio.gather(*(asyncio.to_thread(track_many, t) for t in range(8)))
    assert await asyncio.to_thread(client.flush, 30)
    await asyncio.to_thread(client.close)
    assert (client.stats().sent, dict(client.stats().dropped)) == (3200, {})
    await drain(settings)
    assert len(await stored(pool, tenant.workspace_id)) == 3200


async def test_async_client_in_sync_mode_never_blocks_the_event_loop(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    # The proxy runs in this event loop: were track() to block the loop, nobody would answer it.
    async with fault_proxy(edge_url, ["503"]) as proxy:
        client = AsyncExperimentationClient(tenant.key, proxy.url, sync_mode=True, backoff_base=0.01)
        assert await client.track("inline", user_id="u1", message_id="m-async-inline")
        assert [s.action for s in proxy.seen] == ["503", "forward"]
        await client.close()
    await drain(settings)
    assert list(await stored(pool, tenant.workspace_id)) == ["m-async-inline"]
