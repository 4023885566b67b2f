"""Deletion on request: POST .../deletions, a worker deletes every stored event of that person (and no
one else's), the status goes pending -> running -> done, an audit entry; who may; what is refused at
commit (events queued before the request, and later ones with `suppress`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

from eventplane import db
from eventplane.settings import Settings
from tests.api.conftest import error_code, new_team
from tests.api.flag_support import key_headers
from tests.conftest import make_tenant, registered_instance
from workers import deletions
from workers.store import Store

NOW = dt.datetime.now(dt.UTC)


def url(workspace_id: str) -> str:
    return f"/api/v1/workspaces/{workspace_id}/deletions"


async def put_events(pool: asyncpg.Pool, workspace_id: str, people: list[tuple[str | None, str | None, int]]) -> None:
    """One stored event per (user_id, anonymous_id, days ago)."""
    async with pool.acquire() as conn:
        for _, _, age in people:
            await db.ensure_partitions(conn, (NOW - dt.timedelta(days=age)).date())
        await conn.executemany(
            "INSERT INTO events (workspace_id, message_id, event_type, user_id, anonymous_id, timestamp, received_at) "
            "VALUES ($1, $2, 'e', $3, $4, $5, $5)",
            [(uuid.UUID(workspace_id), uuid.uuid4().hex, u, a, NOW - dt.timedelta(days=age, minutes=1))
             for u, a, age in people],
        )  # fmt: skip


async def people(pool: asyncpg.Pool, workspace_id: str) -> list[tuple[str | None, str | None]]:
    rows = await pool.fetch(
        "SELECT user_id, anonymous_id FROM events WHERE workspace_id = $1 ORDER BY 1, 2", uuid.UUID(workspace_id)
    )
    return [(r[0], r[1]) for r in rows]


def settled() -> dt.datetime:
    """A time at which a request made now has settled."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=deletions.SETTLE_SECONDS + 1)


async def finish(pool: asyncpg.Pool, deletion_id: str, **kwargs: Any) -> None:
    """Run the worker (as if a minute had passed) until that request is done; other tests' requests may
    come first."""
    for _ in range(50):
        await deletions.process(pool, settled(), **kwargs)
        if await pool.fetchval("SELECT status FROM deletions WHERE id = $1", uuid.UUID(deletion_id)) == "done":
            return
    raise AssertionError(f"deletion {deletion_id} never finished")


async def test_a_users_events_are_deleted_and_nobody_elses(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    ws, other = team.workspace_id, (await make_tenant(pool)).workspace_id
    await put_events(pool, ws, [("u1", None, 0), ("u1", "a9", 2), ("u1", None, 5), ("u2", None, 0),
                                (None, "a1", 0), (None, "a1", 1)])  # fmt: skip
    await put_events(pool, other, [("u1", None, 0), (None, "a1", 0)])

    r = await api.post(url(ws), json={"user_id": "u1"}, headers=team.owner.headers)
    assert r.status_code == 202, r.text
    made = r.json()
    assert (made["status"], made["user_id"], made["anonymous_id"], made["rows_deleted"]) == ("pending", "u1", None, 0)
    # Not before it settled (a commit that began before the request may still be storing u1's rows).
    await deletions.process(pool, dt.datetime.fromisoformat(made["created_at"]))
    assert (await api.get(f"{url(ws)}/{made['id']}", headers=team.owner.headers)).json()["status"] == "pending"

    await finish(pool, made["id"])
    got = (await api.get(f"{url(ws)}/{made['id']}", headers=team.owner.headers)).json()
    assert (got["status"], got["rows_deleted"]) == ("done", 3)
    assert got["started_at"] is not None and got["finished_at"] is not None
    assert await people(pool, ws) == [("u2", None), (None, "a1"), (None, "a1")]

    r = await api.post(url(ws), json={"anonymous_id": "a1"}, headers=team.admin.headers)
    assert r.status_code == 202, r.text
    await finish(pool, r.json()["id"])
    assert await people(pool, ws) == [("u2", None)]
    assert await people(pool, other) == [("u1", None), (None, "a1")]  # another workspace's are untouched

    listed = (await api.get(url(ws), params={"limit": 1}, headers=team.owner.headers)).json()
    assert [d["user_id"] for d in listed["items"]] == ["u1"] and listed["next_cursor"]
    rest = (await api.get(url(ws), params={"cursor": listed["next_cursor"]}, headers=team.owner.headers)).json()
    assert [(d["anonymous_id"], d["rows_deleted"]) for d in rest["items"]] == [("a1", 2)]

    audit = (await api.get(f"/api/v1/workspaces/{ws}/audit-log", params={"entity_type": "deletion"},
                           headers=team.owner.headers)).json()["items"]  # fmt: skip
    assert [(a["actor_user_id"], a["action"], a["entity_key"], a["after"]) for a in audit] == [
        (team.admin.id, "create", r.json()["id"], {"user_id": None, "anonymous_id": "a1", "suppress": False}),
        (team.owner.id, "create", made["id"], {"user_id": "u1", "anonymous_id": None, "suppress": False}),
    ]  # fmt: skip
    # Those who may not ask may not read them either.
    seen = (await api.get(f"/api/v1/workspaces/{ws}/audit-log", headers=team.viewer.headers)).json()["items"]
    assert not [a for a in seen if a["entity_type"] == "deletion"]


async def test_a_deletion_resumes_where_a_stopped_worker_left_it(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    await put_events(pool, team.workspace_id, [("u1", None, 0)] * 5)
    made = (await api.post(url(team.workspace_id), json={"user_id": "u1"}, headers=team.owner.headers)).json()
    later = settled()
    for _ in range(20):  # one batch of 2 a run, as if the worker were stopped after each
        await deletions.process(pool, later, max_batches=1, batch=2)
        got = (await api.get(f"{url(team.workspace_id)}/{made['id']}", headers=team.owner.headers)).json()
        if got["status"] == "done":
            break
        assert got["status"] in ("pending", "running")  # pending while other tests' requests go first
    assert (got["status"], got["rows_deleted"]) == ("done", 5)
    assert await people(pool, team.workspace_id) == []


async def test_who_may_ask(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    team = await new_team(api)
    ws = team.workspace_id
    for account in (team.viewer, team.developer):
        r = await api.post(url(ws), json={"user_id": "u1"}, headers=account.headers)
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN"), r.text
        r = await api.get(url(ws), headers=account.headers)
        assert (r.status_code, error_code(r)) == (403, "FORBIDDEN"), r.text
    write_key = await key_headers(api, team, ["write"])
    r = await api.post(url(ws), json={"user_id": "u1"}, headers=write_key)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE"), r.text
    admin_key = await key_headers(api, team, ["admin"])
    r = await api.post(url(ws), json={"user_id": "u1"}, headers=admin_key)
    assert r.status_code == 202, r.text
    theirs = r.json()["id"]
    actor = await pool.fetchval("SELECT actor_key_id FROM deletions WHERE id = $1", uuid.UUID(theirs))
    assert actor is not None
    # A stranger's workspace is not found, and neither is another workspace's request.
    stranger = await new_team(api)
    r = await api.post(url(ws), json={"user_id": "u1"}, headers=stranger.owner.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    r = await api.get(f"{url(stranger.workspace_id)}/{theirs}", headers=stranger.owner.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")


async def test_malformed_requests_are_400(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    malformed: list[dict[str, Any]] = [
        {}, {"user_id": "u", "anonymous_id": "a"}, {"user_id": ""}, {"user_id": "x" * 256},
        {"user_id": "u", "suppress": "yes"}, {"user_id": "u", "extra": 1}, {"user_id": "u\u0000"},
    ]  # fmt: skip
    for payload in malformed:
        r = await api.post(url(team.workspace_id), json=payload, headers=team.owner.headers)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), (payload, r.text)
    r = await api.post(url(team.workspace_id), content=b"{", headers=team.owner.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), r.text


@pytest_asyncio.fixture
async def writer(settings: Settings) -> AsyncIterator[Store]:
    w = await Store.connect(settings.dsn, 2)
    yield w
    await w.close()


def queued(workspace_id: str, user_id: str, received: dt.datetime) -> tuple[Any, ...]:
    received_us = int(received.timestamp() * 1_000_000)
    return (workspace_id, uuid.uuid4().hex, "e", user_id, None, None, b"{}", None, None, received_us, None)


async def test_events_queued_before_the_request_are_refused_at_commit_and_counted(
    api: httpx.AsyncClient, pool: asyncpg.Pool, writer: Store
) -> None:
    team = await new_team(api)
    ws = team.workspace_id
    made = (await api.post(url(ws), json={"user_id": "u1"}, headers=team.owner.headers)).json()
    cutoff = dt.datetime.fromisoformat(made["created_at"])
    before, after = cutoff - dt.timedelta(seconds=5), cutoff + dt.timedelta(seconds=5)
    rows = [queued(ws, "u1", before), queued(ws, "u1", after), queued(ws, "u2", before)]
    outcome = await writer.store(rows)
    assert (outcome.stored, outcome.refused) == (2, 1)
    assert await people(pool, ws) == [("u1", None), ("u2", None)]  # u1's later event is theirs to keep
    got = (await api.get(f"{url(ws)}/{made['id']}", headers=team.owner.headers)).json()
    assert got["events_refused"] == 1


async def test_suppression_refuses_that_persons_later_events_too(
    api: httpx.AsyncClient, pool: asyncpg.Pool, writer: Store
) -> None:
    team = await new_team(api)
    ws = team.workspace_id
    r = await api.post(url(ws), json={"user_id": "u1", "suppress": True}, headers=team.owner.headers)
    made = r.json()
    assert made["suppress"] is True
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    outcome = await writer.store([queued(ws, "u1", later), queued(ws, "u1", later), queued(ws, "u2", later)])
    assert (outcome.stored, outcome.refused) == (1, 2)
    assert await people(pool, ws) == [("u2", None)]
    await finish(pool, made["id"])
    got = (await api.get(f"{url(ws)}/{made['id']}", headers=team.owner.headers)).json()
    assert (got["status"], got["events_refused"]) == ("done", 2)


async def test_a_request_without_suppression_stops_being_checked_once_no_event_can_still_be_queued(
    api: httpx.AsyncClient, pool: asyncpg.Pool, writer: Store
) -> None:
    team = await new_team(api)
    ws = team.workspace_id
    made = (await api.post(url(ws), json={"user_id": "u1"}, headers=team.owner.headers)).json()
    aged = dt.datetime.fromisoformat(made["created_at"]) - dt.timedelta(days=deletions.QUEUED_DAYS, minutes=1)
    await pool.execute("UPDATE deletions SET created_at = $2 WHERE id = $1", uuid.UUID(made["id"]), aged)
    outcome = await writer.store([queued(ws, "u1", aged - dt.timedelta(minutes=1))])
    assert (outcome.stored, outcome.refused) == (1, 0)


async def test_on_another_instance_the_request_and_its_work_stay_there(
    api: httpx.AsyncClient, api_settings: Settings, pool: asyncpg.Pool
) -> None:
    """A workspace on a registered instance: its request is stored beside its events (where that
    instance's workers run deletions.process), and the hub keeps the audit entry."""
    team = await new_team(api)
    ws = team.workspace_id
    async with registered_instance(api_settings, "dl") as instance:
        await pool.execute("UPDATE workspaces SET instance = $2 WHERE id = $1", uuid.UUID(ws), instance.name)
        there = await db.create_pool(instance.database_url, min_size=0, max_size=2)
        try:
            await put_events(there, ws, [("u1", None, 0), ("u2", None, 0)])
            r = await api.post(url(ws), json={"user_id": "u1"}, headers=team.owner.headers)
            assert r.status_code == 202, r.text
            made = r.json()
            assert await pool.fetchval("SELECT count(*) FROM deletions WHERE id = $1", uuid.UUID(made["id"])) == 0
            await finish(there, made["id"])
            assert await people(there, ws) == [("u2", None)]
            got = (await api.get(f"{url(ws)}/{made['id']}", headers=team.owner.headers)).json()
            assert (got["status"], got["rows_deleted"]) == ("done", 1)
            listed = (await api.get(url(ws), headers=team.owner.headers)).json()["items"]
            assert [d["id"] for d in listed] == [made["id"]]
            audit = (await api.get(f"/api/v1/workspaces/{ws}/audit-log", params={"entity_type": "deletion"},
                                   headers=team.owner.headers)).json()["items"]  # fmt: skip
            assert [a["entity_key"] for a in audit] == [made["id"]]
        finally:
            await db.close_pool(there)


def of(row: tuple[Any, ...], user_id: str | None, anonymous_id: str | None) -> tuple[Any, ...]:
    """A queued row of another person (either id may be None)."""
    return (*row[:3], user_id, anonymous_id, *row[5:])


def poison(workspace_id: str, user_id: str | None, anonymous_id: str | None, received: dt.datetime) -> tuple[Any, ...]:
    """A queued row Postgres refuses (jsonb takes no \\u0000): the store keeps it in dead_letters."""
    row = of(queued(workspace_id, "", received), user_id, anonymous_id)
    return (*row[:6], b'{"k": "\\u0000"}', *row[7:])


async def copies(pool: asyncpg.Pool, workspace_id: str) -> tuple[list[Any], list[Any]]:
    """Who is in the workspace's dead letters and in its queued webhook payloads."""
    dead = await pool.fetch(
        "SELECT user_id, anonymous_id FROM dead_letters WHERE workspace_id = $1 ORDER BY 1, 2", workspace_id
    )
    outbox = await pool.fetch(
        "SELECT o.payload ->> 'user_id', o.payload ->> 'anonymous_id' FROM webhook_outbox o "
        "JOIN webhook_destinations d ON d.id = o.destination_id WHERE d.workspace_id = $1 ORDER BY 1, 2",
        uuid.UUID(workspace_id),
    )
    return [tuple(r) for r in dead], [tuple(r) for r in outbox]


async def test_a_deletion_removes_the_persons_dead_letters_and_queued_webhook_payloads(
    api: httpx.AsyncClient, pool: asyncpg.Pool, writer: Store
) -> None:
    team = await new_team(api)
    ws, owner = team.workspace_id, team.owner.headers
    hook = {"url": "https://hooks.example.com/eventplane"}  # never delivered: no worker runs here
    assert (await api.put(f"/api/v1/workspaces/{ws}/webhooks", json={"webhooks": [hook]}, headers=owner)).is_success
    received = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    stored = [queued(ws, "u1", received), queued(ws, "u2", received), of(queued(ws, "", received), None, "a1")]
    dead = [poison(ws, "u1", None, received), poison(ws, "u2", None, received), poison(ws, None, "a1", received)]
    outcome = await writer.store(stored + dead)
    assert (outcome.stored, outcome.dead) == (3, 3)
    everyone = [("u1", None), ("u2", None), (None, "a1")]
    assert await copies(pool, ws) == (everyone, everyone)

    made = (await api.post(url(ws), json={"user_id": "u1"}, headers=owner)).json()
    await finish(pool, made["id"])
    got = (await api.get(f"{url(ws)}/{made['id']}", headers=owner)).json()
    assert (got["status"], got["rows_deleted"], got["dead_letters_deleted"], got["webhook_rows_deleted"]) == (
        "done", 1, 1, 1
    )  # fmt: skip
    others = [("u2", None), (None, "a1")]
    assert await copies(pool, ws) == (others, others)  # another person's stay

    made = (await api.post(url(ws), json={"anonymous_id": "a1"}, headers=owner)).json()
    await finish(pool, made["id"])
    got = (await api.get(f"{url(ws)}/{made['id']}", headers=owner)).json()
    assert (got["dead_letters_deleted"], got["webhook_rows_deleted"]) == (1, 1)
    assert await copies(pool, ws) == ([("u2", None)], [("u2", None)])
    await api.put(f"/api/v1/workspaces/{ws}/webhooks", json={"webhooks": []}, headers=owner)
