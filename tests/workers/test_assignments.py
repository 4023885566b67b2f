"""The worker records sticky assignments from the `$exposure` events it stores: in the same transaction,
the first exposure of a unit to an experiment at a bucket version wins."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio

from eventplane.queue import Row
from eventplane.settings import Settings
from tests.conftest import Tenant, make_tenant
from workers.store import Store

T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest_asyncio.fixture
async def writer(settings: Settings) -> AsyncIterator[Store]:
    w = await Store.connect(settings.dsn, 2)
    yield w
    await w.close()


def exposure(tenant: Tenant, unit: str, variant: str, *, experiment: str = "price", version: Any = 1,
             minutes: int = 0, message_id: str | None = None, anonymous: bool = False) -> Row:  # fmt: skip
    props = json.dumps({"experiment": experiment, "variant": variant, "bucket_version": version}).encode()
    user, anon = (None, unit) if anonymous else (unit, None)
    mid = message_id or f"exp:{experiment}:{version}:{unit}:{uuid.uuid4().hex[:6]}"
    at = T0 + dt.timedelta(minutes=minutes)
    return (tenant.workspace_id, mid, "$exposure", user, anon, None, props, at, None, time.time_ns() // 1000, None)


async def experiment(pool: asyncpg.Pool, tenant: Tenant, key: str = "price") -> uuid.UUID:
    exp_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO experiments (workspace_id, key, name, salt, variants, conversion_event, status) "
        'VALUES ($1, $2, $2, \'abcdefabcdef\', \'[{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]\', '
        "'buy', 'running') RETURNING id",
        uuid.UUID(tenant.workspace_id),
        key,
    )
    return exp_id


async def assignments(pool: asyncpg.Pool, exp_id: uuid.UUID) -> dict[tuple[int, str], tuple[str, dt.datetime]]:
    rows = await pool.fetch("SELECT bucket_version, unit_id, variant, first_exposed_at FROM experiment_assignments "
                            "WHERE experiment_id = $1", exp_id)  # fmt: skip
    return {(r["bucket_version"], r["unit_id"]): (r["variant"], r["first_exposed_at"]) for r in rows}


async def test_first_exposure_wins(pool: asyncpg.Pool, writer: Store) -> None:
    tenant = await make_tenant(pool)
    exp_id = await experiment(pool, tenant)
    plain = (tenant.workspace_id, "m-plain", "buy", "u1", None, 3.0, b'{"experiment": "price"}', T0, None,
             time.time_ns() // 1000)  # fmt: skip
    first = [
        exposure(tenant, "u1", "b", minutes=5),
        exposure(tenant, "u1", "a", minutes=1),  # earlier in the same batch: this one is first
        exposure(tenant, "anon-1", "b", anonymous=True),
        exposure(tenant, "u2", "a", version=2),
        exposure(tenant, "u3", "a", version="2"),  # a version sent as a string still counts
        exposure(tenant, "u4", "a", version="x"),  # not a version: no assignment, the event is stored all the same
        exposure(tenant, "u5", "a", experiment="unknown"),
        plain,
    ]
    assert (await writer.store(first)).stored == len(first)
    assert await assignments(pool, exp_id) == {
        (1, "u1"): ("a", T0 + dt.timedelta(minutes=1)),
        (1, "anon-1"): ("b", T0),
        (2, "u2"): ("a", T0),
        (2, "u3"): ("a", T0),
    }
    # A later exposure never replaces a recorded one, whether new (the plain path) or among duplicates.
    later = [exposure(tenant, "u1", "b", minutes=-10), exposure(tenant, "u6", "b")]
    assert (await writer.store(later)).stored == 2
    again = [first[0], exposure(tenant, "u7", "a")]  # a duplicate message: the ledger's dedup path
    assert (await writer.store(again)).stored == 1
    recorded = await assignments(pool, exp_id)
    assert recorded[(1, "u1")] == ("a", T0 + dt.timedelta(minutes=1))
    assert recorded[(1, "u6")][0] == "b" and recorded[(1, "u7")][0] == "a"
    assert len(recorded) == 6


async def test_deleting_the_experiment_removes_its_assignments(pool: asyncpg.Pool, writer: Store) -> None:
    tenant = await make_tenant(pool)
    exp_id = await experiment(pool, tenant, "gone")
    await writer.store([exposure(tenant, "u1", "a", experiment="gone")])
    assert len(await assignments(pool, exp_id)) == 1
    await pool.execute("DELETE FROM experiments WHERE id = $1", exp_id)
    assert await assignments(pool, exp_id) == {}
