"""The audit log: every committed flag and experiment change, with who or which key, before and after,
newest first, filtered by entity, paginated; refused changes leave no entry."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import error_code, new_account, new_team
from tests.api.flag_support import WS, document, experiments_url, flags_url, key_headers
from tests.api.test_experiments import EXP
from tests.api.test_flags import FLAG

FIELDS = {"id", "action", "entity_type", "entity_key", "actor_user_id", "actor_key_id", "before", "after", "at"}


def audit_url(workspace_id: str) -> str:
    return f"{WS}/{workspace_id}/audit-log"


async def entries(api: httpx.AsyncClient, ws: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every entry, page by page (pages of 2, so the cursor is used)."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await api.get(audit_url(ws), params=query, headers=headers)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


async def test_every_change_is_recorded(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws, dev = team.workspace_id, team.developer.headers
    write_key = await key_headers(api, team, ["write"])
    created = (await api.post(flags_url(ws), json=FLAG, headers=dev)).json()
    changed = (await api.patch(flags_url(ws, FLAG["key"]), json={"rollout": 50}, headers=write_key)).json()
    assert (await api.delete(flags_url(ws, FLAG["key"]), headers=dev)).status_code == 204
    draft = (await api.post(experiments_url(ws), json=EXP, headers=dev)).json()
    running = (await api.patch(experiments_url(ws, EXP["key"]), json={"status": "running"}, headers=dev)).json()
    rerandomized = (await api.post(experiments_url(ws, EXP["key"], "rerandomize"), headers=dev)).json()

    log = await entries(api, ws, team.viewer.headers)
    assert all(set(e) == FIELDS for e in log)
    summary = [(e["action"], e["entity_type"], e["entity_key"]) for e in log]
    assert summary == [
        ("rerandomize", "experiment", EXP["key"]),
        ("status", "experiment", EXP["key"]),
        ("create", "experiment", EXP["key"]),
        ("delete", "feature_flag", FLAG["key"]),
        ("update", "feature_flag", FLAG["key"]),
        ("create", "feature_flag", FLAG["key"]),
    ]
    rerandomize, status, create_exp, delete, update, create = log
    assert (create["before"], create["after"]) == (None, created)
    assert (update["before"], update["after"]) == (created, changed)
    assert (delete["before"], delete["after"]) == (changed, None)
    assert (create_exp["after"], status["before"], status["after"]) == (draft, draft, running)
    assert (rerandomize["before"], rerandomize["after"]) == (running, rerandomized)
    developer_id = next(m for m in (await api.get(f"{WS}/{ws}/members", headers=dev)).json()["items"]
                        if m["email"] == team.developer.email)["user_id"]  # fmt: skip
    assert {(e["actor_user_id"], e["actor_key_id"]) for e in log if e is not update} == {(developer_id, None)}
    keys = (await api.get(f"{WS}/{ws}/api-keys", headers=team.owner.headers)).json()["items"]
    assert (update["actor_user_id"], update["actor_key_id"]) == (None, keys[0]["id"])
    assert [e["at"] for e in log] == sorted((e["at"] for e in log), reverse=True)

    only_flags = await entries(api, ws, team.viewer.headers, entity_type="feature_flag")
    assert [e["action"] for e in only_flags] == ["delete", "update", "create"]
    one = await entries(api, ws, write_key, entity_type="experiment", entity_key=EXP["key"])
    assert [e["action"] for e in one] == ["rerandomize", "status", "create"]
    assert await entries(api, ws, dev, entity_key="nothing-here") == []


async def test_refused_changes_leave_no_entry(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws, dev = team.workspace_id, team.developer.headers
    assert (await api.post(flags_url(ws), json=FLAG, headers=dev)).status_code == 201
    assert (await api.post(flags_url(ws), json=FLAG, headers=dev)).status_code == 409
    assert (await api.patch(flags_url(ws, FLAG["key"]), json={"rollout": 1.234}, headers=dev)).status_code == 400
    assert (
        await api.patch(flags_url(ws, FLAG["key"]), json={"rollout": 1}, headers=team.viewer.headers)
    ).status_code == 403
    assert (await api.post(experiments_url(ws), json=EXP, headers=dev)).status_code == 201
    r = await api.patch(experiments_url(ws, EXP["key"]), json={"status": "stopped"}, headers=dev)
    assert r.status_code == 409
    assert [e["action"] for e in await entries(api, ws, dev)] == ["create", "create"]


async def test_who_reads_it(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws = team.workspace_id
    await api.post(flags_url(ws), json=FLAG, headers=team.owner.headers)
    await api.post(experiments_url(ws), json=EXP, headers=team.owner.headers)
    flags_only = await key_headers(api, team, ["flags:read"])
    assert [e["entity_type"] for e in await entries(api, ws, flags_only)] == ["feature_flag"]
    r = await api.get(audit_url(ws), params={"entity_type": "experiment"}, headers=flags_only)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    tracker = await key_headers(api, team, ["track:write"])
    r = await api.get(audit_url(ws), headers=tracker)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")
    r = await api.get(audit_url(ws), params={"entity_type": "member"}, headers=team.viewer.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    r = await api.get(audit_url(ws), params={"cursor": "nonsense"}, headers=team.viewer.headers)
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")
    outsider = await new_account(api)
    r = await api.get(audit_url(ws), headers=outsider.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")


async def test_a_change_that_changes_nothing_is_not_one(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    ws, dev = team.workspace_id, team.developer.headers
    created = (await api.post(flags_url(ws), json=FLAG, headers=dev)).json()
    assert (await api.post(experiments_url(ws), json=EXP, headers=dev)).status_code == 201
    for body in ({}, {"rollout": FLAG["rollout"]}, {"rules": FLAG["rules"], "enabled": True}):
        r = await api.patch(flags_url(ws, FLAG["key"]), json=body, headers=dev)
        assert r.status_code == 200 and r.json() == created
    for body in ({}, {"status": "draft"}, {"variants": EXP["variants"], "allocation": EXP["allocation"]}):
        assert (await api.patch(experiments_url(ws, EXP["key"]), json=body, headers=dev)).status_code == 200
    assert [e["action"] for e in await entries(api, ws, dev)] == ["create", "create"]
    assert (await document(api, ws))["version"] == 2
