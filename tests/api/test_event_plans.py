"""The event list is served from indexes: on a table of 320,000 events in four workspaces over eight daily
partitions, `EXPLAIN` of every filter combination's query (as api/event_query.py builds it, with and
without a cursor) shows only index scans, of the filter's index, on the partitions: never a Seq Scan (but of an empty
partition)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import msgspec
import pytest_asyncio

from api import event_query
from api.event_query import Filters
from tests.api.event_support import chunks, load

BIG, SMALL = 200_000, 40_000
TINY = 1_000  # rows: a partition with fewer may be read whole
TODAY = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
DAYS = [TODAY + dt.timedelta(days=d) for d in range(-1, 7)]  # partitions made by migrate
TYPE, USER, ANON, TIME = ("events_workspace_type_time", "events_workspace_user_time",
                          "events_workspace_anonymous_time", "events_workspace_time")  # fmt: skip


def records(workspace_id: uuid.UUID, n: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rnd = random.Random(seed)
    for i in range(n):
        received = DAYS[i % len(DAYS)] + dt.timedelta(seconds=rnd.randrange(40_000))
        stamp = received - dt.timedelta(seconds=rnd.randrange(5))
        user = f"u{rnd.randrange(5000)}" if rnd.random() < 0.7 else None
        anon = f"a{rnd.randrange(5000)}" if user is None or rnd.random() < 0.3 else None
        props = f'{{"plan": "{rnd.choice(("free", "pro", "enterprise"))}", "i": {i}}}'
        yield (workspace_id, f"{seed}-{i}", f"type_{rnd.randrange(20)}", user, anon, None, props, stamp, received, None)


@pytest_asyncio.fixture(scope="module")
async def big(pool: asyncpg.Pool) -> AsyncIterator[uuid.UUID]:
    workspaces = [uuid.uuid4() for _ in range(4)]
    for n, (workspace_id, size) in enumerate(zip(workspaces, (BIG, SMALL, SMALL, SMALL), strict=True)):
        for batch in chunks(records(workspace_id, size, n), 50_000):
            await load(pool, batch)
    await pool.execute("ANALYZE events")
    yield workspaces[0]
    await pool.execute("DELETE FROM events WHERE workspace_id = ANY($1::uuid[])", workspaces)


async def _parents(pool: asyncpg.Pool) -> dict[str, str]:
    """Each partition's index -> the index of `events` it belongs to."""
    rows = await pool.fetch(
        "SELECT c.relname AS child, p.relname AS parent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relkind = 'I'"
    )
    return {r["child"]: r["parent"] for r in rows}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def _tiny(pool: asyncpg.Pool, partition: str) -> bool:
    rows: int = await pool.fetchval(f'SELECT count(*) FROM (SELECT FROM "{partition}" LIMIT {TINY}) s')
    return rows < TINY


async def plan_indexes(pool: asyncpg.Pool, query: str, args: list[Any]) -> tuple[set[str], set[str]]:
    """(node types that read a table, names of the `events` indexes they use). A Seq Scan of an empty or
    tiny partition (those made a week ahead; a few rows other tests of the session stored on other days)
    is left out: it reads a page or none, and Postgres rightly prefers it. Every partition of this
    module's table holds 40,000 rows."""
    explained = await pool.fetchval("EXPLAIN (FORMAT JSON) " + query, *args)
    plan = msgspec.json.decode(explained)[0]["Plan"]
    parents = await _parents(pool)
    scans = set()
    for node in _nodes(plan):
        kind = node["Node Type"]
        if kind == "Seq Scan" and await _tiny(pool, node["Relation Name"]):
            continue
        if "Scan" in kind and kind != "Bitmap Heap Scan":
            scans.add(kind)
    used = {parents.get(n["Index Name"], n["Index Name"]) for n in _nodes(plan) if "Index Name" in n}
    return scans, used


async def test_every_filter_combination_is_an_index_scan(pool: asyncpg.Pool, big: uuid.UUID) -> None:
    start, end = DAYS[2], DAYS[3]
    cases: list[tuple[Filters, set[str]]] = [
        (Filters(), {TIME}),
        (Filters(event_type="type_3"), {TYPE}),
        (Filters(user_id="u42"), {USER}),
        (Filters(anonymous_id="a42"), {ANON}),
        (Filters(start=start, end=end), {TIME}),
        (Filters(start=start), {TIME}),
        (Filters(properties=(("plan", "pro"),)), {TIME}),
        (Filters(event_type="type_3", start=start, end=end), {TYPE}),
        (Filters(event_type="type_3", user_id="u42"), {TYPE, USER}),
        (Filters(user_id="u42", start=start, end=end, properties=(("plan", "pro"),)), {USER}),
        (Filters(anonymous_id="a42", event_type="type_1"), {TYPE, ANON}),
        (Filters(event_type="type_3", properties=(("plan", "enterprise"),)), {TYPE}),
    ]
    position = (DAYS[4], "0-5")
    for filters, expected in cases:
        for before in (None, position):
            query, args = event_query.sql(big, filters, before, 51)
            scans, used = await plan_indexes(pool, query, args)
            assert "Seq Scan" not in scans, (filters, before, scans)
            assert scans <= {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}, (filters, scans)
            # The filter's own index; on a partition where few rows are left before the cursor, the planner may
            # read another index of the workspace's and filter, which is still no scan of the table.
            assert used & expected, (filters, before, used)
