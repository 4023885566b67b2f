"""Moving a workspace between instances (eventplane/moves.py) on the suite's servers: interrupted after
the copy and resumed, it ends with every event once on the target, and the source's rows deleted."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import replace

import asyncpg
import httpx
import pytest

from eventplane import db, instances, moves, queue, tenants, workspace_config
from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from ingest import batcher
from tests.conftest import Tenant, drain, registered_instance, running_edge
from tests.workers.webhook_receiver import Receiver
from workers import deletions
from workers.main import build_worker
from workers.webhooks import Deliverer

BATCH = "/api/v1/tracking/batch"


async def _ids(dsn: str, workspace_id: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT message_id FROM events WHERE workspace_id = $1", workspace_id)
        ledger = await conn.fetchval("SELECT count(*) FROM event_ids WHERE workspace_id = $1", workspace_id)
        usage = await conn.fetchval("SELECT coalesce(sum(events), 0) FROM usage_daily WHERE workspace_id = $1",
                                    workspace_id)  # fmt: skip
    finally:
        await conn.close()
    assert ledger == len(rows) == usage, (ledger, len(rows), usage)
    return sorted(r[0] for r in rows)


async def _run_one_job(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, max_burst_jobs=1, poll_delay=0, handle_signals=False, cron_jobs=[])
    try:
        await worker.main()
    finally:
        await worker.close()


def test_the_fence_knows_the_edge_enqueue_timeout() -> None:
    assert moves.EDGE_ENQUEUE_TIMEOUT == batcher.ENQUEUE_TIMEOUT


def _batch(ids: list[str]) -> dict[str, object]:
    return {"events": [{"event_type": "m", "user_id": "u", "message_id": m} for m in ids]}


async def test_move_interrupted_after_the_copy_resumes(fresh: Settings, pool: asyncpg.Pool) -> None:
    async with registered_instance(fresh, "mv") as mv:
        slug = f"mv-{uuid.uuid4().hex[:10]}"
        workspace = await tenants.create_workspace(pool, name=slug, slug=slug, instance="default")
        _, key = await tenants.create_api_key(pool, workspace_id=workspace["id"], name="t", scope_names=["write"])
        tenant = Tenant(workspace, key, "")
        before = [f"a{i}" for i in range(20)]
        async with running_edge(fresh) as edge:
            assert (await edge.post(BATCH, json=_batch(before), headers=tenant.headers)).status_code == 202
            await drain(fresh)
            assert await _ids(fresh.dsn, tenant.workspace_id) == sorted(before)

            assert await moves.move(fresh, slug, "mv", stop_after="routed", fence_seconds=0.2) == "routed"
            after = [f"b{i}" for i in range(10)]
            retried = before[:5]  # an SDK's retry of events stored on the source: dropped by the copied ledger
            r = await edge.post(BATCH, json=_batch(after + retried), headers=tenant.headers)
            assert r.status_code == 202, r.text
            await _run_one_job(instances.settings_for(fresh, mv))  # the target's worker holds it: nothing stored
            assert await _ids(mv.database_url, tenant.workspace_id) == []

            step = await moves.move(fresh, slug, "mv", stop_after="copied", fence_seconds=0.2)
            assert step == "copied"  # "killed" here: the history is on both, the target's workers hold
            assert await _ids(mv.database_url, tenant.workspace_id) == sorted(before)
        target = connect_redis(mv.redis_url)
        try:
            assert (await queue.depth(target, RedisNames(fresh.redis_prefix)))[0] == 15  # on the target's queue
        finally:
            await target.aclose()
        with pytest.raises(moves.MoveError, match="finish that move first"):
            await moves.move(fresh, slug, "default")

        assert await moves.move(fresh, slug, "mv", fence_seconds=0.2) == "released"
        await drain(instances.settings_for(fresh, mv))
        assert await _ids(mv.database_url, tenant.workspace_id) == sorted(before + after)
        assert await _ids(fresh.dsn, tenant.workspace_id) == []
        assert await pool.fetchval("SELECT instance FROM workspaces WHERE id = $1", tenant.workspace_id) == "mv"
        assert await pool.fetchval("SELECT count(*) FROM workspace_moves") == 0
        with pytest.raises(moves.MoveError, match="already"):
            await moves.move(fresh, slug, "mv")


async def test_the_copy_brings_every_ledger_day_and_keeps_requests_made_on_the_target(
    fresh: Settings, pool: asyncpg.Pool
) -> None:
    """A ledger row whose event retention removed has a day the target has no partition of; a deletion
    request made (and even finished) on the target after routing must survive the copy and run again over
    the copied history."""
    async with registered_instance(fresh, "mc") as mc:
        slug = f"mc-{uuid.uuid4().hex[:10]}"
        workspace = await tenants.create_workspace(pool, name=slug, slug=slug, instance="default")
        wid = uuid.UUID(workspace["id"])
        old_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=5)
        async with pool.acquire() as conn:
            await db.ensure_partitions(conn, around=old_day)
            await conn.execute("INSERT INTO event_ids (workspace_id, message_id, day) VALUES ($1, 'old', $2)",
                               wid, old_day)  # fmt: skip
            await conn.execute(
                "INSERT INTO events (workspace_id, message_id, event_type, user_id, timestamp, received_at) "
                "VALUES ($1, 'u1-event', 'e', 'u1', now() - interval '1 hour', now() - interval '1 hour')",
                wid,
            )
        target = await db.create_pool(mc.database_url, min_size=0, max_size=2)
        try:
            assert await moves.move(fresh, slug, "mc", stop_after="routed", fence_seconds=0.2) == "routed"
            made = await target.fetchval(
                "INSERT INTO deletions (workspace_id, user_id, status, finished_at) VALUES ($1, 'u1', 'done', now()) "
                "RETURNING id",
                wid,
            )  # asked after routing, and finished on the target before the source's history arrived
            assert await moves.move(fresh, slug, "mc", stop_after="copied", fence_seconds=0.2) == "copied"
            assert await target.fetchval("SELECT day FROM event_ids WHERE workspace_id = $1 AND message_id = 'old'",
                                         wid) == old_day  # fmt: skip
            assert await target.fetchval("SELECT status FROM deletions WHERE id = $1", made) == "pending"
            later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=deletions.SETTLE_SECONDS + 1)
            for _ in range(10):
                await deletions.process(target, later)
            assert await target.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", wid) == 0
            assert await target.fetchval("SELECT status FROM deletions WHERE id = $1", made) == "done"
        finally:
            await db.close_pool(target)
        assert await moves.move(fresh, slug, "mc", fence_seconds=0.2) == "released"


async def test_webhooks_and_assignments_survive_a_move_there_and_back(fresh: Settings, pool: asyncpg.Pool) -> None:
    """Default -> named -> default: each event reaches the receiver once (what the source had not delivered
    goes with the move; the source's workers deliver nothing after it), and exposures keep recording."""
    quick = replace(fresh, webhook_timeout=1.0, webhook_batch_size=100, webhook_allow_private=True)
    async with registered_instance(fresh, "mw") as mw, Receiver().serving() as receiver:
        slug = f"mw-{uuid.uuid4().hex[:10]}"
        workspace = await tenants.create_workspace(pool, name=slug, slug=slug, instance="default")
        wid = uuid.UUID(workspace["id"])
        _, key = await tenants.create_api_key(pool, workspace_id=workspace["id"], name="t", scope_names=["write"])
        tenant = Tenant(workspace, key, "")
        exp_id = await pool.fetchval(
            "INSERT INTO experiments (workspace_id, key, name, salt, variants, conversion_event, status) VALUES "
            "($1, 'price', 'price', 'abcdefabcdef', '[{\"key\": \"a\", \"weight\": 50}]', 'buy', 'running') "
            "RETURNING id",
            wid,
        )
        async with pool.acquire() as conn:
            hooks = await workspace_config.replace_webhooks(conn, wid, [{"url": receiver.url}], allow_private=True)
        receiver.secret = hooks[0]["signing_secret"]
        on_mw = instances.settings_for(quick, mw)
        target = await db.create_pool(mw.database_url, min_size=0, max_size=2)
        sent: list[str] = []

        async def track(edge: httpx.AsyncClient, tag: str, unit: str) -> None:
            ids = [f"{tag}{i}" for i in range(3)]
            events = [{"event_type": "m", "user_id": "u", "message_id": m} for m in ids] + [
                {"event_type": "$exposure", "user_id": unit, "message_id": f"exp:{tag}",
                 "properties": {"experiment": "price", "variant": "a", "bucket_version": 1}}]  # fmt: skip
            r = await edge.post(BATCH, json={"events": events}, headers=tenant.headers)
            assert r.status_code == 202, r.text
            sent.extend([*ids, f"exp:{tag}"])

        async def deliver(where: asyncpg.Pool) -> int:
            async with httpx.AsyncClient(timeout=1.0) as client:
                return await Deliverer(where, client, quick).run(budget=0.5)

        async def delivered(where: asyncpg.Pool) -> None:
            deadline = time.monotonic() + 10
            while sorted(receiver.message_ids) != sorted(sent):
                assert time.monotonic() < deadline, (receiver.message_ids, sent)
                await deliver(where)
                await asyncio.sleep(0.02)

        async def units(where: asyncpg.Pool) -> list[str]:
            rows = await where.fetch("SELECT unit_id FROM experiment_assignments WHERE experiment_id = $1", exp_id)
            return sorted(r[0] for r in rows)

        try:
            async with running_edge(fresh) as edge:
                await track(edge, "a", "u1")
                await drain(quick)
                await delivered(pool)
                await track(edge, "b", "u2")  # stored on the hub, not delivered before the move
                await drain(quick)
                assert await moves.move(quick, slug, "mw", fence_seconds=0.2) == "released"
                assert await deliver(pool) == 0  # the hub has nothing of it left to send
                await track(edge, "c", "u3")
                await drain(on_mw)
                await delivered(target)
                assert await units(target) == ["u1", "u2", "u3"] and await units(pool) == []

                assert await moves.move(quick, slug, "default", fence_seconds=0.2) == "released"
                assert await deliver(target) == 0
                await track(edge, "d", "u4")
                await drain(quick)
                await delivered(pool)
                assert await units(pool) == ["u1", "u2", "u3", "u4"]
                assert await target.fetchval("SELECT count(*) FROM webhook_destinations") == 0
            await deliver(pool)
            await deliver(target)
            assert sorted(receiver.message_ids) == sorted(sent)  # each once
            assert receiver.bad_signatures == 0
        finally:
            await db.close_pool(target)
            async with pool.acquire() as conn:
                await workspace_config.replace_webhooks(conn, wid, [], allow_private=True)
