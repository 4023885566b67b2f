"""The api reads a workspace's event data from its instance (api/instances.py), and only operators name
an instance when creating one (api/workspaces.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import asyncpg
import httpx

from api.app import create_app
from eventplane import instances
from eventplane.settings import Secret, Settings
from tests.api.conftest import client_for, error_code, new_account, new_team, unique_slug
from tests.api.flag_support import experiments_url, key_headers
from tests.conftest import drain, registered_instance

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
    """Assignments are not recorded on an instance (docs/scaling.md): a stored `$exposure` there counts."""
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
        weights = [{"key": "control", "weight": 20}, {"key": "annual", "weight": 80}]
        r = await api.patch(experiments_url(ws, "plans"), json={"variants": weights}, headers=h)
        assert r.status_code == 200 and r.json()["sticky"] == "remote", r.text
