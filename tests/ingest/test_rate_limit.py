"""Per-workspace ingestion rates: a noisy tenant gets 429 RATE_LIMITED with Retry-After, nothing of its
refused requests is queued, and a quiet tenant sharing the same edge (and the same flushes) is unaffected."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg

from eventplane.settings import Settings
from tests.conftest import drain, make_tenant, running_edge

BATCH = "/api/v1/tracking/batch"
TEN = {"events": [{"event_type": "e", "user_id": "u"}] * 10}
ONE = {"events": [{"event_type": "e", "user_id": "u"}]}


async def _stored(pool: asyncpg.Pool, workspace_id: str) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", workspace_id)
    return count


async def test_a_noisy_tenant_is_limited_and_a_quiet_one_is_not(fresh: Settings, pool: asyncpg.Pool) -> None:
    # The free plan (1,000 events/s, bursts of 20,000) scaled down to 1 event/s in bursts of 20 (a burst is
    # never below the largest batch, here 20 events).
    settings = replace(fresh, rate_limit_scale=0.001, max_batch_events=20)
    noisy, quiet = await make_tenant(pool), await make_tenant(pool)
    async with running_edge(settings) as edge:
        # Together, so that both tenants' requests share the edge's coalesced flushes.
        responses = await asyncio.gather(
            *[edge.post(BATCH, json=TEN, headers=noisy.headers) for _ in range(6)],
            *[edge.post(BATCH, json=ONE, headers=quiet.headers) for _ in range(6)],
        )
        noisy_statuses = sorted(r.status_code for r in responses[:6])
        assert [r.status_code for r in responses[6:]] == [202] * 6
        assert noisy_statuses == [202, 202, 429, 429, 429, 429]
        refused = next(r for r in responses[:6] if r.status_code == 429)
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert 9 <= int(refused.headers["retry-after"]) <= 10  # 10 events at 1/s into an empty bucket
        # Later requests: the noisy one is still refused, the quiet one still accepted.
        assert (await edge.post(BATCH, json=TEN, headers=noisy.headers)).status_code == 429
        assert (await edge.post(BATCH, json=ONE, headers=quiet.headers)).status_code == 202
    await drain(settings)
    assert await _stored(pool, quiet.workspace_id) == 7
    assert await _stored(pool, noisy.workspace_id) == 20  # the two accepted batches, nothing refused


async def test_rate_limit_scale_zero_turns_limits_off(fresh: Settings, pool: asyncpg.Pool) -> None:
    settings = replace(fresh, rate_limit_scale=0.0)
    t = await make_tenant(pool)
    async with running_edge(settings) as edge:
        big = {"events": [{"event_type": "e", "user_id": "u"}] * 2500}
        statuses = [(await edge.post(BATCH, json=big, headers=t.headers)).status_code for _ in range(10)]
    assert statuses == [202] * 10


async def test_every_valid_batch_fits_a_full_bucket(fresh: Settings, pool: asyncpg.Pool) -> None:
    settings = replace(fresh, rate_limit_scale=0.0001)  # 0.1 event/s; the burst stays at one full batch
    t = await make_tenant(pool)
    async with running_edge(settings) as edge:
        full = {"events": [{"event_type": "e", "user_id": "u"}] * settings.max_batch_events}
        assert (await edge.post(BATCH, json=full, headers=t.headers)).status_code == 202
        refused = await edge.post(BATCH, json=full, headers=t.headers)
    assert refused.status_code == 429


async def test_the_rate_is_shared_by_every_edge(fresh: Settings, pool: asyncpg.Pool) -> None:
    settings = replace(fresh, rate_limit_scale=0.001, max_batch_events=20)  # 1 event/s, bursts of 20
    t = await make_tenant(pool)
    async with running_edge(settings) as one, running_edge(settings) as two:
        assert (await one.post(BATCH, json=TEN, headers=t.headers)).status_code == 202
        assert (await two.post(BATCH, json=TEN, headers=t.headers)).status_code == 202
        for edge in (one, two):
            r = await edge.post(BATCH, json=TEN, headers=t.headers)
            assert (r.status_code, r.json()["error"]["code"]) == (429, "RATE_LIMITED")
