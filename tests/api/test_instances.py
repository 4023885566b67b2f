"""The api reads a workspace's event data from its instance (api/instances.py), and only operators name
an instance when creating one (api/workspaces.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import replace

import asyncpg
import httpx

from api.app import create_app
from eventplane import db, instances
from eventplane.settings import Secret, Settings
from tests.api.conftest import client_for, error_code, new_account, new_team, unique_slug
from tests.api.flag_support import experiments_url, key_headers
from tests.conftest import drain, registered_instance
from tests.workers.webhook_receiver import Receiver
from workers import webhooks
from workers.main import build_worker
from workers.webhooks import Deliverer

WS = "/api/v1/workspaces"
ADMIN = {"x-admin-token": "s3cret-admin"}


async def test_operators_place_workspaces_and_reads_come_from_the_instance(
    api_settings: Settings, pool: asyncpg.Pool
) -> None:
    async with registered_instance(api_settings, "ia") as ia:
        app = create_app(replace(api_settings, admin_token=Secret("s3cret-admin")))
        async with app.router.lifespan_context(app), client_for(app) as api:
            owner = await new_account(api)
            body = {"name": "Placed", "slug": unique_slug(), "instance": "ia"}
            r = await api.post(WS, json=body, headers={**owner.headers, **ADMIN})
            assert r.status_code == 201, r.text
            workspace_id = r.json()["id"]
            assert await pool.fetchval("SELECT instance FROM workspaces WHERE id = $1", workspace_id) == "ia"
            r = await api.post(WS, json={**body, "slug": unique_slug(), "instance": "nowhere"},
                               headers={**owner.headers, **ADMIN})  # fmt: skip
            assert (r.status_code, error_code(r)) == (400, "INSTANCE_UNKNOWN")
            # The hub holds a decoy count for the same workspace: the api must read the instance's.
            day = dt.date(2026, 3, 1)
            insert = "INSERT INTO usage_daily (workspace_id, day, event_type, events) VALUES ($1, $2, 'e', $3)"
            await pool.execute(insert, workspace_id, day, 999)
            conn = await asyncpg.connect(ia.database_url)
            try:
                await conn.execute(insert, workspace_id, day, 7)
            finally:
                await conn.close()
            r = await api.get(f"{WS}/{workspace_id}/usage", params={"from": "2026-03-01", "to": "2026-03-01"},
                              headers=owner.headers)  # fmt: skip
            assert r.status_code == 200, r.text
            assert r.json()["total"] == 7
            r = await api.get(f"{WS}/{workspace_id}/event-types", headers=owner.headers)
            assert [(t["event_type"], t["events"]) for t in r.json()["items"]] == [("e", 7)]
            r = await api.get(f"{WS}/{workspace_id}/events", headers=owner.headers)
            assert r.status_code == 200 and r.json()["items"] == []


async def test_naming_an_instance_needs_the_admin_token(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    r = await api.post(WS, json={"name": "X", "slug": unique_slug(), "instance": "default"}, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (403, "INSTANCE_CHOICE_FORBIDDEN")


async def test_sticky_turns_remote_after_exposures_stored_on_an_instance(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, api_settings: Settings
) -> None:
    """The instance's worker records the assignment (the experiment's key is mirrored there), and the
    sticky check reads it there: with the `$exposure` event itself deleted, the assignment still counts."""
    async with registered_instance(api_settings, "ie") as ie:
        team = await new_team(api)  # placed on ie, the least loaded instance
        ws, h = team.workspace_id, team.owner.headers
        exp = {"key": "plans", "conversion": {"event_type": "buy"},
               "variants": [{"key": "control", "weight": 50}, {"key": "annual", "weight": 50}]}  # fmt: skip
        assert (await api.post(experiments_url(ws), json=exp, headers=h)).status_code == 201
        r = await api.patch(experiments_url(ws, "plans"), json={"status": "running"}, headers=h)
        assert r.status_code == 200, r.text
        tracker = await key_headers(api, team, ["track:write"])
        exposure = {"event_type": "$exposure", "user_id": "u1", "message_id": "exp:plans:1:u1",
                    "properties": {"experiment": "plans", "variant": "annual", "bucket_version": 1}}  # fmt: skip
        assert (await edge.post("/api/v1/tracking/track", json=exposure, headers=tracker)).status_code == 202
        await drain(instances.settings_for(api_settings, ie))
        conn = await asyncpg.connect(ie.database_url)
        try:
            recorded = await conn.fetch("SELECT unit_id, variant, bucket_version FROM experiment_assignments "
                                        "WHERE workspace_id = $1", uuid.UUID(ws))  # fmt: skip
            assert [tuple(r) for r in recorded] == [("u1", "annual", 1)]
            await conn.execute("DELETE FROM events WHERE workspace_id = $1", uuid.UUID(ws))
        finally:
            await conn.close()
        weights = [{"key": "control", "weight": 20}, {"key": "annual", "weight": 80}]
        r = await api.patch(experiments_url(ws, "plans"), json={"variants": weights}, headers=h)
        assert r.status_code == 200 and r.json()["sticky"] == "remote", r.text


async def test_webhooks_of_a_workspace_on_an_instance_are_delivered_by_its_workers(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, api_settings: Settings, pool: asyncpg.Pool
) -> None:
    """A destination made over the api lives on the workspace's instance: that instance's worker delivers
    the workspace's stored events to a real receiver, once; the hub's worker has nothing of it to send."""
    fast = replace(api_settings, webhook_timeout=2.0, webhook_batch_size=100)
    async with registered_instance(api_settings, "iw") as iw, Receiver().serving() as receiver:
        team = await new_team(api)  # placed on iw, the least loaded instance
        ws, h = team.workspace_id, team.owner.headers
        r = await api.put(f"{WS}/{ws}/webhooks", json={"webhooks": [{"url": receiver.url}]}, headers=h)
        assert r.status_code == 200, r.text
        hook = r.json()["webhooks"][0]
        receiver.secret = hook["signing_secret"]
        assert await pool.fetchval("SELECT count(*) FROM webhook_destinations WHERE workspace_id = $1",
                                   uuid.UUID(ws)) == 0  # fmt: skip
        tracker = await key_headers(api, team, ["track:write"])
        sent = [f"w-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
        events = {"events": [{"event_type": "signup", "user_id": "u1", "message_id": m} for m in sent]}
        assert (await edge.post("/api/v1/tracking/batch", json=events, headers=tracker)).status_code == 202
        on_iw = instances.settings_for(fast, iw)
        await drain(on_iw)
        worker = build_worker(on_iw, burst=True, handle_signals=False)
        try:  # the instance's workers run the delivery job
            assert webhooks.deliver in [c.coroutine for c in worker.cron_jobs]
        finally:
            await worker.close()
        assert await deliver_all(pool, fast) == 0  # the hub's deliverer: nothing of this workspace
        data = await db.create_pool(iw.database_url, min_size=0, max_size=2)
        try:
            deadline = time.monotonic() + 10
            while sorted(receiver.message_ids) != sorted(sent):
                assert time.monotonic() < deadline, receiver.message_ids
                await deliver_all(data, fast)
                await asyncio.sleep(0.02)
            await deliver_all(data, fast)
            await deliver_all(pool, fast)
        finally:
            await db.close_pool(data)
        assert sorted(receiver.message_ids) == sorted(sent) and receiver.bad_signatures == 0
        r = await api.get(f"{WS}/{ws}/webhooks/{hook['id']}/deliveries", headers=h)
        assert r.status_code == 200 and [d["ok"] for d in r.json()["items"]] == [True], r.text
        r = await api.get(f"{WS}/{ws}/webhooks", headers=h)
        assert r.json()["webhooks"][0]["delivered_total"] == 3 and r.json()["webhooks"][0]["pending"] == 0


async def deliver_all(pool: asyncpg.Pool, settings: Settings) -> int:
    async with httpx.AsyncClient(timeout=settings.webhook_timeout) as client:
        return await Deliverer(pool, client, settings).run(budget=1.0)
