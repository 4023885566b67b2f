"""API keys through the management API: create (shown once), list, update, revoke, rotate, limits, scopes,
the older /api/v1/api-keys routes, and the edge's view of every change."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import asyncpg
import httpx
from redis.asyncio import Redis

from eventplane import keyformat
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.api.conftest import Account, Team, demoted_while_waiting, error_code, new_account, new_team, new_workspace
from tests.conftest import drain
from workers.jobs import fold_last_used

WS = "/api/v1/workspaces"
TRACK = "/api/v1/tracking/track"
LIST_FIELDS = {"id", "workspace_id", "name", "description", "key_prefix", "scopes", "created_at", "last_used_at",
               "expires_at", "is_active"}  # fmt: skip
CREATED_FIELDS = LIST_FIELDS | {"key"}


def keys_url(workspace_id: str, key_id: str | None = None, action: str = "") -> str:
    return f"{WS}/{workspace_id}/api-keys" + (f"/{key_id}" if key_id else "") + (f"/{action}" if action else "")


async def create_key(api: httpx.AsyncClient, who: Account, workspace_id: str, scopes: list[str] | None = None,
                     **extra: object) -> httpx.Response:  # fmt: skip
    payload = {"name": "k", "scopes": ["write"] if scopes is None else scopes, **extra}
    return await api.post(keys_url(workspace_id), json=payload, headers=who.headers)


async def track(edge: httpx.AsyncClient, key: str) -> int:
    r = await edge.post(TRACK, json={"event_type": "e2e", "user_id": "u"}, headers={"X-API-Key": key})
    return r.status_code


async def until_status(edge: httpx.AsyncClient, key: str, status: int, within: float = 1.0) -> float:
    """Seconds until the edge answers `status` for `key`; fails after `within` seconds."""
    start = time.monotonic()
    while (code := await track(edge, key)) != status:
        assert time.monotonic() - start < within, f"edge still answers {code} after {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_create_shows_the_key_once_and_stores_only_its_hash(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    r = await create_key(api, team.developer, team.workspace_id, ["track:write", "read"])
    assert r.status_code == 201
    created = r.json()
    assert keyformat.well_formed(created["key"]) and created["key"].startswith(created["key_prefix"])
    assert set(created) == CREATED_FIELDS
    assert created["scopes"] == ["track:write", "read"]
    row = await pool.fetchrow("SELECT key_hash, created_by FROM api_keys WHERE id = $1", created["id"])
    assert row is not None
    assert row["key_hash"] == keyformat.hash_key(created["key"]) and str(row["created_by"]) == team.developer.id

    r = await api.get(keys_url(team.workspace_id), headers=team.viewer.headers)
    [listed] = r.json()["items"]
    assert set(listed) == LIST_FIELDS and listed["is_active"] is True and listed["last_used_at"] is None
    assert created["key"] not in r.text
    r = await api.get(keys_url(team.workspace_id, created["id"]), headers=team.viewer.headers)
    assert r.json() == listed


async def test_scopes_are_validated(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    for scopes in (["nope"], [], ["track:write", "flags:admin"]):
        r = await create_key(api, team.owner, team.workspace_id, scopes)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), scopes
        assert r.json()["error"]["details"]["field"] == "scopes"
    for scopes in (["read"], ["write"], ["flags:read", "experiments:read", "workspace:read", "track:write"]):
        assert (await create_key(api, team.owner, team.workspace_id, scopes)).status_code == 201


async def test_roles_and_the_admin_scope(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    r = await create_key(api, team.viewer, team.workspace_id, ["read"])
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await create_key(api, team.developer, team.workspace_id, ["admin"])
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    admin_key = (await create_key(api, team.admin, team.workspace_id, ["admin"])).json()
    assert (await create_key(api, team.owner, team.workspace_id, ["admin"])).status_code == 201
    # A DEVELOPER may not rotate (and so read), re-scope, rename or revoke an admin key either.
    url = keys_url(team.workspace_id, admin_key["id"])
    for r in (
        await api.post(f"{url}/rotate", headers=team.developer.headers),
        await api.put(url, json={"name": "mine"}, headers=team.developer.headers),
        await api.delete(url, headers=team.developer.headers),
    ):
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    dev_key = (await create_key(api, team.developer, team.workspace_id, ["read"])).json()
    r = await api.put(keys_url(team.workspace_id, dev_key["id"]), json={"scopes": ["admin"]},
                      headers=team.developer.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")


async def test_plan_caps_active_keys(api: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)  # free: 3 keys
    created = [(await create_key(api, owner, ws["id"])).json() for _ in range(3)]
    r = await create_key(api, owner, ws["id"])
    assert (r.status_code, error_code(r)) == (403, "PLAN_LIMIT")
    assert r.json()["error"]["details"] == {"limit": "max_api_keys", "max": 3}
    assert (await api.delete(keys_url(ws["id"], created[0]["id"]), headers=owner.headers)).status_code == 204
    assert (await create_key(api, owner, ws["id"])).status_code == 201


async def test_plan_without_api_access(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    await pool.execute("UPDATE workspaces SET plan = 'legacy-unknown' WHERE id = $1", ws["id"])
    r = await create_key(api, owner, ws["id"])
    assert (r.status_code, error_code(r)) == (403, "PLAN_FEATURE_UNAVAILABLE")


async def test_expiry_must_be_future_and_zoned(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    for expires_at in (past, "2999-01-01T00:00:00", "tomorrow"):
        r = await create_key(api, team.owner, team.workspace_id, expires_at=expires_at)
        assert (r.status_code, r.json()["error"]["details"]["field"]) == (400, "expires_at"), expires_at
    r = await create_key(api, team.owner, team.workspace_id, expires_at="2999-01-01T00:00:00Z")
    assert (r.status_code, r.json()["expires_at"]) == (201, "2999-01-01T00:00:00Z")


async def test_update_renames_and_rescopes(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    created = (await create_key(api, team.developer, team.workspace_id, ["write"])).json()
    url = keys_url(team.workspace_id, created["id"])
    r = await api.put(url, json={"name": "renamed", "scopes": ["read"]}, headers=team.developer.headers)
    assert (r.status_code, r.json()["name"], r.json()["scopes"]) == (200, "renamed", ["read"])
    for payload in ({"scopes": ["bad"]}, {"name": ""}, {"key_hash": "x"}, {"workspace_id": team.workspace_id}):
        r = await api.put(url, json=payload, headers=team.developer.headers)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), payload


async def test_rotate_rules(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    created = (await create_key(api, team.owner, team.workspace_id, ["read"], name="ci")).json()
    url = keys_url(team.workspace_id, created["id"], "rotate")
    r = await api.post(url, json={"grace_seconds": 7 * 24 * 3600 + 1}, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    r = await api.post(url, json={"grace_seconds": 3600}, headers=team.owner.headers)
    assert r.status_code == 200
    rotated = r.json()
    assert (rotated["name"], rotated["scopes"], rotated["replaced_key_id"]) == ("ci", ["read"], created["id"])
    assert rotated["key"] != created["key"] and keyformat.well_formed(rotated["key"])
    stops = dt.datetime.fromisoformat(rotated["replaced_key_expires_at"])
    assert dt.timedelta(minutes=59) < stops - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
    assert (await api.delete(keys_url(team.workspace_id, created["id"]), headers=team.owner.headers)).status_code == 204
    r = await api.post(url, headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (409, "KEY_ALREADY_ROTATED")
    r = await api.post(keys_url(team.workspace_id, rotated["id"], "rotate"), headers=team.owner.headers)
    assert r.status_code == 200  # its replacement rotates
    revoked = (await create_key(api, team.owner, team.workspace_id, ["read"])).json()
    assert (await api.delete(keys_url(team.workspace_id, revoked["id"]), headers=team.owner.headers)).status_code == 204
    r = await api.post(keys_url(team.workspace_id, revoked["id"], "rotate"), headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (409, "CONFLICT")


async def test_last_used_at_is_exposed(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, redis: Redis, keys: RedisNames, pool: asyncpg.Pool
) -> None:
    team = await new_team(api)
    created = (await create_key(api, team.owner, team.workspace_id)).json()
    # What the edges hand to Redis every 30 s and a worker folds into Postgres every minute:
    await redis.hset(keys.key_last_used, mapping={created["id"]: str(int(time.time()))})  # type: ignore[misc]
    await fold_last_used(redis, keys, pool)
    r = await api.get(keys_url(team.workspace_id, created["id"]), headers=team.owner.headers)
    used = dt.datetime.fromisoformat(r.json()["last_used_at"])
    assert abs((dt.datetime.now(dt.UTC) - used).total_seconds()) < 60


async def test_key_management_refuses_api_keys(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    key = (await create_key(api, team.owner, team.workspace_id, ["admin"])).json()["key"]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        r = await api.get(keys_url(team.workspace_id), headers=headers)
        assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")
        r = await api.post(keys_url(team.workspace_id), json={"name": "x", "scopes": ["read"]}, headers=headers)
        assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")
        r = await api.get(f"{WS}/{team.workspace_id}/members", headers=headers)
        assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")


# Older-style routes ----------------------------------------------------------------------------------------
async def test_legacy_routes_use_the_only_workspace_or_the_one_named(api: httpx.AsyncClient) -> None:
    me = await new_account(api)
    ws = await new_workspace(api, me, plan="pro")
    r = await api.post("/api/v1/api-keys", json={"name": "old", "scopes": ["write"]}, headers=me.headers)
    assert (r.status_code, r.json()["workspace_id"]) == (201, ws["id"])
    key_id = r.json()["id"]
    assert [k["id"] for k in (await api.get("/api/v1/api-keys", headers=me.headers)).json()["items"]] == [key_id]

    second = await new_workspace(api, me, plan="pro")
    r = await api.post("/api/v1/api-keys", json={"name": "old", "scopes": ["write"]}, headers=me.headers)
    assert (r.status_code, error_code(r)) == (400, "WORKSPACE_AMBIGUOUS")
    assert (await api.get("/api/v1/api-keys", headers=me.headers)).status_code == 400
    r = await api.post("/api/v1/api-keys", json={"name": "x", "scopes": ["read"], "workspace_id": second["id"]},
                       headers=me.headers)  # fmt: skip
    assert (r.status_code, r.json()["workspace_id"]) == (201, second["id"])
    r = await api.get("/api/v1/api-keys", params={"workspace_id": ws["id"]}, headers=me.headers)
    assert [k["id"] for k in r.json()["items"]] == [key_id]

    # By key id: the key's workspace (and, if named, it must match).
    assert (await api.get(f"/api/v1/api-keys/{key_id}", headers=me.headers)).json()["id"] == key_id
    r = await api.put(f"/api/v1/api-keys/{key_id}", json={"name": "n", "workspace_id": second["id"]},
                      headers=me.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    r = await api.put(f"/api/v1/api-keys/{key_id}", json={"name": "n"}, headers=me.headers)
    assert (r.status_code, r.json()["name"]) == (200, "n")
    r = await api.post(f"/api/v1/api-keys/{key_id}/rotate", json={"workspace_id": ws["id"]}, headers=me.headers)
    assert (r.status_code, r.json()["replaced_key_id"]) == (200, key_id)
    new_id = r.json()["id"]
    assert (await api.delete(f"/api/v1/api-keys/{new_id}", headers=me.headers)).status_code == 204
    assert (await api.get(f"/api/v1/api-keys/{new_id}", headers=me.headers)).json()["is_active"] is False


# End to end with the real edge -----------------------------------------------------------------------------
async def test_key_lifecycle_at_the_edge(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, settings: Settings, pool: asyncpg.Pool
) -> None:
    team: Team = await new_team(api)
    created = (await create_key(api, team.developer, team.workspace_id, ["write"])).json()
    assert await track(edge, created["key"]) == 202
    await drain(settings)
    r = await api.get(f"{WS}/{team.workspace_id}/usage", headers=team.developer.headers)
    assert r.json()["total"] == 1

    # Rotate with no grace: the old key stops at once, the new one works.
    r = await api.post(keys_url(team.workspace_id, created["id"], "rotate"), headers=team.developer.headers)
    rotated = r.json()
    assert await until_status(edge, created["key"], 401) < 1.0
    assert await track(edge, rotated["key"]) == 202

    # Archive: 403 WORKSPACE_ARCHIVED at the edge within a second; restore: accepted again.
    await api.post(f"{WS}/{team.workspace_id}/archive", headers=team.admin.headers)
    assert await until_status(edge, rotated["key"], 403) < 1.0
    await api.post(f"{WS}/{team.workspace_id}/restore", headers=team.admin.headers)
    assert await until_status(edge, rotated["key"], 202) < 1.0

    # Revoke: 401 within a second.
    r = await api.delete(keys_url(team.workspace_id, rotated["id"]), headers=team.developer.headers)
    assert r.status_code == 204
    assert await until_status(edge, rotated["key"], 401) < 1.0


async def test_rotation_grace_keeps_the_old_key_working_until_it_ends(
    api: httpx.AsyncClient, edge: httpx.AsyncClient
) -> None:
    team = await new_team(api)
    created = (await create_key(api, team.owner, team.workspace_id)).json()
    assert await track(edge, created["key"]) == 202
    r = await api.post(keys_url(team.workspace_id, created["id"], "rotate"), json={"grace_seconds": 2},
                       headers=team.owner.headers)  # fmt: skip
    assert await track(edge, created["key"]) == 202
    assert await track(edge, r.json()["key"]) == 202
    assert await until_status(edge, created["key"], 401, within=3.0) > 1.0


async def test_deleting_the_workspace_stops_its_keys(api: httpx.AsyncClient, edge: httpx.AsyncClient) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    created = (await create_key(api, owner, ws["id"])).json()
    assert await track(edge, created["key"]) == 202
    assert (await api.delete(f"{WS}/{ws['id']}", headers=owner.headers)).status_code == 204
    assert await until_status(edge, created["key"], 401) < 1.0


async def _active_keys(api: httpx.AsyncClient, who: Account, workspace_id: str) -> int:
    r = await api.get(f"{WS}/{workspace_id}/billing", headers=who.headers)
    count: int = r.json()["usage"]["active_api_keys"]
    return count


async def test_chained_rotations_stay_within_the_key_cap(api: httpx.AsyncClient) -> None:
    me = await new_account(api)
    ws = (await new_workspace(api, me))["id"]  # free: 3 active keys
    made = [(await create_key(api, me, ws, ["read"])).json() for _ in range(3)]
    grace = {"grace_seconds": 3600}
    r = await api.post(keys_url(ws, made[0]["id"], "rotate"), json=grace, headers=me.headers)
    assert (r.status_code, error_code(r)) == (403, "PLAN_LIMIT")  # the old key in grace would be a fourth
    r = await api.post(keys_url(ws, made[0]["id"], "rotate"), json={"grace_seconds": 0}, headers=me.headers)
    assert r.status_code == 200  # replaced at once: still three
    current = r.json()["id"]
    for key in made[1:]:
        assert (await api.delete(keys_url(ws, key["id"]), headers=me.headers)).status_code == 204
    for _ in range(2):
        r = await api.post(keys_url(ws, current, "rotate"), json=grace, headers=me.headers)
        assert r.status_code == 200
        r2 = await api.post(keys_url(ws, current, "rotate"), json=grace, headers=me.headers)
        assert (r2.status_code, error_code(r2)) == (409, "KEY_ALREADY_ROTATED")
        current = r.json()["id"]
    assert await _active_keys(api, me, ws) == 3
    r = await api.post(keys_url(ws, current, "rotate"), json=grace, headers=me.headers)
    assert (r.status_code, error_code(r)) == (403, "PLAN_LIMIT")
    assert await _active_keys(api, me, ws) == 3


async def test_rotation_needs_api_access(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    me = await new_account(api)
    ws = (await new_workspace(api, me))["id"]
    key = (await create_key(api, me, ws, ["read"])).json()
    await pool.execute("UPDATE workspaces SET plan = 'legacy-unknown' WHERE id = $1", ws)
    r = await api.post(keys_url(ws, key["id"], "rotate"), json={"grace_seconds": 0}, headers=me.headers)
    assert (r.status_code, error_code(r)) == (403, "PLAN_FEATURE_UNAVAILABLE")


async def test_revoking_and_updating_use_the_role_read_under_the_lock(api: httpx.AsyncClient,
                                                                     pool: asyncpg.Pool) -> None:  # fmt: skip
    team = await new_team(api)
    key = (await create_key(api, team.admin, team.workspace_id, ["admin"])).json()
    url = keys_url(team.workspace_id, key["id"])
    r = await demoted_while_waiting(pool, team, api.delete(url, headers=team.admin.headers))
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    await pool.execute("UPDATE workspace_members SET role = 'ADMIN' WHERE id = $1", uuid.UUID(team.member_ids["ADMIN"]))
    r = await demoted_while_waiting(pool, team, api.put(url, json={"name": "mine now"}, headers=team.admin.headers))
    assert (r.status_code, error_code(r)) == (403, "FORBIDDEN")
    r = await api.get(url, headers=team.owner.headers)
    assert (r.json()["is_active"], r.json()["name"]) == (True, "k")


async def test_the_documented_api_keys_flow(api: httpx.AsyncClient, edge: httpx.AsyncClient) -> None:
    me = await new_account(api)
    ws = (await new_workspace(api, me))["id"]
    made = {}
    for scope in ("read", "write", "admin"):
        r = await api.post("/api/v1/api-keys", json={"name": f"{scope} key", "description": f"for {scope}",
                           "scopes": [scope]}, headers=me.headers)  # fmt: skip
        assert r.status_code == 201, r.text
        body = r.json()
        assert set(body) == CREATED_FIELDS and body["workspace_id"] == ws
        assert (body["description"], body["last_used_at"], body["is_active"]) == (f"for {scope}", None, True)
        made[scope] = body
    r = await api.get("/api/v1/api-keys", headers=me.headers)
    assert r.status_code == 200
    listed = {k["id"]: k for k in r.json()["items"]}
    assert all(set(k) == LIST_FIELDS for k in listed.values())
    assert {k["description"] for k in listed.values()} == {"for read", "for write", "for admin"}
    assert not any(k["key"] in r.text for k in made.values())
    write = made["write"]
    assert await track(edge, write["key"]) == 202
    r = await api.delete(f"/api/v1/api-keys/{write['id']}", headers=me.headers)
    assert r.status_code == 204
    await until_status(edge, write["key"], 401)
    r = await api.get(f"{WS}/current", headers={"X-API-Key": write["key"]})
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
