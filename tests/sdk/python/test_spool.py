"""spool_dir: what close or exit could not deliver is kept on disk and sent by the next client with the
same directory, deduplicated by message id (and its drop report by report id); a file goes only after
a 2xx."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import httpx
from experimentation_sdk import ExperimentationClient
from redis.asyncio import Redis

from eventplane import client_drops
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from tests.sdk.python.conftest import dead_url, stored
from tests.sdk.python.faults import fault_proxy
from tests.sdk.python.test_losses import usage_dropped
from tests.sdk.python.test_processes import run

EXITS_WITH_A_SPOOL = """
import sys
from experimentation_sdk import ExperimentationClient

client = ExperimentationClient(base_url=sys.argv[1], spool_dir=sys.argv[2], shutdown_timeout=0.5)
client.track("spooled", user_id="u1", message_id="exit-spooled")
"""


def files(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.batch.json"))


async def test_undelivered_at_close_is_sent_by_the_next_client_once(
    edge_url: str,
    tenant: Tenant,
    pool: asyncpg.Pool,
    settings: Settings,
    redis: Redis,
    keys: RedisNames,
    api: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    ids = ["s-0", "s-1", "s-2"]
    first = ExperimentationClient(tenant.key, dead_url(), spool_dir=spool, max_queue_size=3, flush_interval=60)
    for m in [*ids, "s-dropped"]:
        first.track("spooled", user_id="u1", message_id=m)
    assert not await asyncio.to_thread(first.close, 0.5)  # the edge is unreachable
    assert first.stats().spooled == 3
    (path,) = files(spool)
    doc = json.loads(path.read_bytes())
    assert [e["message_id"] for e in doc["events"]] == ids
    assert doc["client_report"]["dropped"] == {"queue_full": 1}
    assert tenant.key not in path.read_text()

    # A client whose edge answers 503 throughout keeps the file.
    async with fault_proxy(edge_url, ["503"] * 1000) as failing:
        second = ExperimentationClient(tenant.key, failing.url, spool_dir=spool, retry_budget=0.3, backoff_base=0.05)
        assert await asyncio.to_thread(second.flush, 10)
        await asyncio.to_thread(second.close)
    assert failing.seen and all(s.message_ids == ids for s in failing.seen)
    assert files(spool) == [path]

    # The next one sends it; its first answer is lost (the edge stored it), the retry is answered.
    async with fault_proxy(edge_url, ["lose"]) as proxy:
        third = ExperimentationClient(tenant.key, proxy.url, spool_dir=spool, backoff_base=0.01)
        assert await asyncio.to_thread(third.flush, 10)
        await asyncio.to_thread(third.close)
    assert [s.action for s in proxy.seen] == ["lose", "forward"]
    assert files(spool) == []
    assert third.stats().sent == 3

    await drain(settings)
    assert sorted(await stored(pool, tenant.workspace_id)) == ids
    await client_drops.fold(redis, keys, pool)
    assert await usage_dropped(api, tenant) == {"queue_full": 1}  # the report, sent twice, counted once


async def test_a_process_exiting_with_the_edge_down_leaves_a_spool(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    await run(EXITS_WITH_A_SPOOL, dead_url(), str(spool), key=tenant.key)
    assert len(files(spool)) == 1
    client = ExperimentationClient(tenant.key, edge_url, spool_dir=spool)
    assert await asyncio.to_thread(client.flush, 10)
    await asyncio.to_thread(client.close)
    assert files(spool) == []
    await drain(settings)
    assert list(await stored(pool, tenant.workspace_id)) == ["exit-spooled"]


async def test_spool_files_of_another_key_are_left_alone(edge_url: str, tenant: Tenant, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = ExperimentationClient("ep_live_someone-else", dead_url(), spool_dir=spool)
    first.track("theirs", user_id="u1")
    await asyncio.to_thread(first.close, 0.2)
    async with fault_proxy(edge_url) as proxy:
        mine = ExperimentationClient(tenant.key, proxy.url, spool_dir=spool)
        assert await asyncio.to_thread(mine.flush, 10)
        await asyncio.to_thread(mine.close)
    assert proxy.seen == []
    assert len(files(spool)) == 1


async def test_a_spooled_batch_refused_for_good_is_set_aside(edge_url: str, tenant: Tenant, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = ExperimentationClient(tenant.key, dead_url(), spool_dir=spool)
    first.track("refused", user_id="u1")
    await asyncio.to_thread(first.close, 0.2)
    async with fault_proxy(edge_url, ["400"]) as proxy:
        second = ExperimentationClient(tenant.key, proxy.url, spool_dir=spool)
        assert await asyncio.to_thread(second.flush, 10)
        await asyncio.to_thread(second.close)
        third = ExperimentationClient(tenant.key, proxy.url, spool_dir=spool)
        assert await asyncio.to_thread(third.flush, 10)
        await asyncio.to_thread(third.close)
    assert len(proxy.seen) == 1  # the third client did not send it again
    assert files(spool) == [] and len(list(spool.glob("*.rejected"))) == 1
