"""Losses are never silent: each is counted by reason, logged, handed to on_error, and reported to the
server in the next batch's client_report until a 2xx acknowledges it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import httpx
import pytest
from experimentation_sdk import DeliveryError, ExperimentationClient
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from eventplane import client_drops
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from tests.sdk.python.conftest import stored
from tests.sdk.python.faults import fault_proxy


def paused(key: str, url: str, **options: Any) -> ExperimentationClient:
    """A client that sends nothing until flush() (batches of 100, a minute apart): its queue fills up."""
    return ExperimentationClient(key, url, flush_interval=60.0, **options)


async def usage_dropped(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, int]:
    r = await api.get(f"/api/v1/workspaces/{tenant.workspace_id}/usage", headers={"X-API-Key": tenant.key})
    assert r.status_code == 200, r.text
    dropped: dict[str, int] = r.json()["client_dropped"]
    return dropped


async def edge_dropped(edge: httpx.AsyncClient, reason: str) -> float:
    """The edge's counter eventplane_ingest_client_dropped_total{reason}."""
    for family in text_string_to_metric_families((await edge.get("/metrics")).text):
        for sample in family.samples:
            if sample.name == "eventplane_ingest_client_dropped_total" and sample.labels == {"reason": reason}:
                return sample.value
    return 0.0


async def test_queue_full_drops_are_counted_and_visible_on_the_server(
    edge: httpx.AsyncClient,
    edge_url: str,
    tenant: Tenant,
    pool: asyncpg.Pool,
    settings: Settings,
    redis: Redis,
    keys: RedisNames,
    api: httpx.AsyncClient,
) -> None:
    errors: list[DeliveryError] = []
    before = await edge_dropped(edge, "queue_full")
    async with fault_proxy(edge_url) as proxy:
        client = paused(tenant.key, proxy.url, max_queue_size=3, on_error=errors.append)
        results = [client.track("full", user_id="u1", message_id=f"m-{i}") for i in range(5)]
        assert results == [True, True, True, False, False]
        assert dict(client.stats().dropped) == {"queue_full": 2}
        assert [e.reason for e in errors] == ["queue_full", "queue_full"]
        assert await asyncio.to_thread(client.flush, 10)
        client.track("after", user_id="u1", message_id="m-after")
        assert await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close)
    first, second = proxy.seen
    assert first.message_ids == ["m-0", "m-1", "m-2"]
    assert first.body["client_report"]["dropped"] == {"queue_full": 2}
    assert "client_report" not in second.body  # acknowledged by the 202: cleared
    assert await edge_dropped(edge, "queue_full") == before + 2

    await drain(settings)
    assert sorted(await stored(pool, tenant.workspace_id)) == ["m-0", "m-1", "m-2", "m-after"]
    await client_drops.fold(redis, keys, pool)
    assert await usage_dropped(api, tenant) == {"queue_full": 2}


async def test_drop_oldest_keeps_the_newest(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    client = paused(tenant.key, edge_url, max_queue_size=3, queue_full="drop_oldest")
    assert all(client.track("full", user_id="u1", message_id=f"m-{i}") for i in range(5))
    assert await asyncio.to_thread(client.flush, 10)  # what was queued when flush began was delivered
    await asyncio.to_thread(client.close)
    assert dict(client.stats().dropped) == {"queue_full_oldest": 2}
    await drain(settings)
    assert sorted(await stored(pool, tenant.workspace_id)) == ["m-2", "m-3", "m-4"]


async def test_block_policy_waits_then_drops(edge_url: str, tenant: Tenant) -> None:
    client = paused(tenant.key, edge_url, max_queue_size=2, queue_full="block", block_timeout=0.3)
    assert client.track("a", user_id="u1") and client.track("b", user_id="u1")
    started = time.monotonic()
    assert not client.track("c", user_id="u1")
    assert time.monotonic() - started >= 0.3
    assert dict(client.stats().dropped) == {"queue_full": 1}
    await asyncio.to_thread(client.close)


async def test_block_policy_gets_room_when_the_sender_takes_a_batch(edge_url: str, tenant: Tenant) -> None:
    client = ExperimentationClient(
        tenant.key, edge_url, max_queue_size=2, queue_full="block", block_timeout=10, flush_interval=0.01
    )
    done = await asyncio.to_thread(lambda: [client.track("e", user_id="u1") for _ in range(20)])
    assert all(done)
    assert await asyncio.to_thread(client.flush, 10)
    await asyncio.to_thread(client.close)
    assert client.stats().sent == 20


async def test_bad_events_are_dropped_alone_and_their_batch_mates_stored(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[DeliveryError] = []
    client = ExperimentationClient(tenant.key, edge_url, on_error=errors.append)
    with caplog.at_level(logging.ERROR, logger="experimentation_sdk"):
        assert client.track("ok", user_id="u1", message_id="m-ok-1")
        assert not client.track("huge", user_id="u1", properties={"blob": "x" * 40_000})
        assert not client.track("nul", user_id="u1", properties={"name": "a\x00b"})
        assert not client.track("nobody")
        assert not client.track("bad", user_id="u1", properties={"when": object()})
        assert client.track("ok", user_id="u1", message_id="m-ok-2", properties={"back\\u0000slash": "fine"})
        assert await asyncio.to_thread(client.flush, 10)
    await asyncio.to_thread(client.close)
    assert dict(client.stats().dropped) == {"too_large": 1, "invalid": 3}
    assert [e.reason for e in errors] == ["too_large", "invalid", "invalid", "invalid"]
    assert "too_large" in caplog.text and "limit is 32768" in caplog.text
    await drain(settings)
    assert sorted(await stored(pool, tenant.workspace_id)) == ["m-ok-1", "m-ok-2"]


async def test_report_keeps_its_id_across_retries_and_stays_until_acknowledged(edge_url: str, tenant: Tenant) -> None:
    async with fault_proxy(edge_url, ["503", "lose"]) as proxy:
        client = paused(tenant.key, proxy.url, max_queue_size=1, backoff_base=0.01)
        client.track("a", user_id="u1")
        client.track("b", user_id="u1")  # dropped: queue_full
        assert await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close)
    reports = [s.body["client_report"] for s in proxy.seen]
    assert len(reports) == 3 and all(r == reports[0] for r in reports)
    assert reports[0]["dropped"] == {"queue_full": 1}


async def test_counts_of_a_refused_batch_travel_in_the_next_one(edge_url: str, tenant: Tenant) -> None:
    async with fault_proxy(edge_url, ["400"]) as proxy:
        client = paused(tenant.key, proxy.url, max_queue_size=1)
        client.track("a", user_id="u1", message_id="m-a")
        client.track("b", user_id="u1")  # dropped: queue_full
        assert not await asyncio.to_thread(client.flush, 10)  # refused: "a" is dropped (rejected)
        client.track("c", user_id="u1", message_id="m-c")
        assert await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close)
    refused, alone, last = proxy.seen
    assert (refused.message_ids, refused.body["client_report"]["dropped"]) == (["m-a"], {"queue_full": 1})
    # Not cleared by the 4xx: flush sends the counts at once, alone, under a new report id.
    assert (alone.message_ids, alone.body["client_report"]["dropped"]) == ([], {"queue_full": 1, "rejected": 1})
    assert alone.body["client_report"]["id"] != refused.body["client_report"]["id"]
    assert (last.message_ids, "client_report" in last.body) == (["m-c"], False)  # acknowledged by the 202


async def test_a_report_travels_alone_when_no_event_is_queued(edge_url: str, tenant: Tenant) -> None:
    async with fault_proxy(edge_url) as proxy:
        client = ExperimentationClient(tenant.key, proxy.url)
        client.track("nobody")  # invalid: dropped before it was queued
        assert await asyncio.to_thread(client.flush, 10)
        await asyncio.to_thread(client.close)
    (seen,) = proxy.seen
    assert (seen.body["events"], seen.body["client_report"]["dropped"]) == ([], {"invalid": 1})
