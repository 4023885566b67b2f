"""Experiments of a workspace: create, list, read, change (status draft -> running -> stopped), re-randomize,
delete. Changes follow the same steps as flags (api/flags.py): under the workspace lock, with their audit
entry and config version in the same transaction, pushed to the edges after the commit.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import audit, flag_changes, flag_rules, limits
from api import permissions as p
from api.errors import not_found
from api.flag_access import actor, path_key
from api.flag_wire import ExperimentIn, ExperimentOut, ExperimentPatch, Namespace, Targeting, Variant
from api.flags import salt
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import Page
from eventplane import instance_config
from eventplane.errors import ApiError, validation

COLUMNS = (
    "id, key, name, hypothesis, status, salt, bucket_version, allocation::float8 AS allocation, "
    "targeting::text AS targeting, variants::text AS variants, conversion_event, value_property, namespace_name, "
    "namespace_start, namespace_end, sticky, started_at, stopped_at, created_at, updated_at"
)
TRANSITIONS = {("draft", "running"), ("running", "stopped")}
_ALLOCATION_ONLY = frozenset({"allocation"})
_decode = msgspec.json.decode


def out(row: Any) -> ExperimentOut:
    namespace = None
    if row["namespace_name"] is not None:
        namespace = {"name": row["namespace_name"], "start": row["namespace_start"], "end": row["namespace_end"]}
    return ExperimentOut(id=row["id"], key=row["key"], name=row["name"], hypothesis=row["hypothesis"],
                         status=row["status"], salt=row["salt"], bucket_version=row["bucket_version"],
                         variants=_decode(row["variants"]), targeting=_decode(row["targeting"]),
                         allocation=row["allocation"],
                         conversion={"event_type": row["conversion_event"], "value_property": row["value_property"]},
                         namespace=namespace, sticky=row["sticky"], started_at=row["started_at"],
                         stopped_at=row["stopped_at"], created_at=row["created_at"],
                         updated_at=row["updated_at"])  # fmt: skip


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _check(variants: list[Variant], allocation: float, targeting: Targeting, namespace: Namespace | None) -> None:
    flag_rules.weights(variants, "variants")
    flag_rules.percent(allocation, "allocation")
    flag_rules.targeting(targeting)
    if namespace is not None and namespace.start >= namespace.end:
        raise validation("A namespace range needs start < end (buckets 0..10000)", "namespace.end")


async def _row(conn: Any, workspace_id: uuid.UUID, key: str, lock: bool = False) -> Any:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM experiments WHERE workspace_id = $1 AND key = $2"
                              f"{' FOR UPDATE' if lock else ''}", workspace_id, key)  # fmt: skip
    if row is None:
        raise not_found("experiment")
    return row


_INSERT = f"""
INSERT INTO experiments (workspace_id, key, name, hypothesis, salt, allocation, targeting, variants,
                         conversion_event, value_property, namespace_name, namespace_start, namespace_end, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9, $10, $11, $12, $13, $14)
ON CONFLICT (workspace_id, key) DO NOTHING
RETURNING {COLUMNS}
"""


def _namespace_args(namespace: Namespace | None) -> tuple[str | None, int | None, int | None]:
    return (None, None, None) if namespace is None else (namespace.name, namespace.start, namespace.end)


async def create(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    who = await actor(request, workspace_id, p.EXPERIMENTS_WRITE)
    data = await body(request, ExperimentIn)
    _check(data.variants, data.allocation, data.targeting, data.namespace)
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, plan):
        await who.recheck(conn, p.EXPERIMENTS_WRITE)
        await limits.check_experiment_room(conn, plan, workspace_id)
        row = await conn.fetchrow(_INSERT, workspace_id, data.key, _pick(data.name, data.key), data.hypothesis, salt(),
                                  data.allocation, _json(data.targeting), _json(data.variants),
                                  data.conversion.event_type, data.conversion.value_property,
                                  *_namespace_args(data.namespace), who.user_id)  # fmt: skip
        if row is None:
            raise ApiError(409, "EXPERIMENT_EXISTS", f"The workspace has an experiment '{data.key}' already",
                           {"key": data.key})  # fmt: skip
        created = out(row)
        await flag_changes.committing(conn, who, "create", audit.EXPERIMENT, data.key, None, created)
    await _mirror(svc, created, workspace_id)
    await flag_changes.published(svc, workspace_id)
    return reply(created, 201)


async def list_experiments(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await actor(request, workspace_id, p.EXPERIMENTS_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"SELECT {COLUMNS} FROM experiments WHERE workspace_id = $1 AND (created_at, id) > ($2, $3) "
        "ORDER BY created_at, id LIMIT $4",
        workspace_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def get(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await actor(request, workspace_id, p.EXPERIMENTS_READ)
    return reply(
        out(await _row(services(request).pool, workspace_id, path_key(request, "experiment_key", "experiment")))
    )


def _pick(new: Any, old: Any) -> Any:
    return old if new is msgspec.UNSET else new


def _permission_for(data: ExperimentPatch) -> str:
    given = {f for f in data.__struct_fields__ if getattr(data, f) is not msgspec.UNSET}
    return p.EXPERIMENTS_ALLOCATION if given <= _ALLOCATION_ONLY else p.EXPERIMENTS_WRITE


class _Next(msgspec.Struct, kw_only=True):
    """The experiment as a change leaves it."""

    name: str
    hypothesis: str | None
    status: str
    variants: list[Variant]
    targeting: Targeting
    allocation: float
    event_type: str
    value_property: str | None
    namespace: Namespace | None


def _merged(before: ExperimentOut, data: ExperimentPatch) -> _Next:
    conversion = _pick(data.conversion, None)
    return _Next(
        name=_pick(data.name, before.name),
        hypothesis=_pick(data.hypothesis, before.hypothesis),
        status=_pick(data.status, before.status),
        variants=_pick(data.variants, msgspec.convert(before.variants, list[Variant])),
        targeting=_pick(data.targeting, msgspec.convert(before.targeting, Targeting)),
        allocation=_pick(data.allocation, before.allocation),
        event_type=before.conversion["event_type"] if conversion is None else conversion.event_type,
        value_property=before.conversion["value_property"] if conversion is None else conversion.value_property,
        namespace=_pick(data.namespace, None if before.namespace is None else msgspec.convert(before.namespace,
                                                                                                Namespace)),
    )  # fmt: skip


def _check_transition(before: ExperimentOut, nxt: _Next) -> None:
    if nxt.status != before.status and (before.status, nxt.status) not in TRANSITIONS:
        raise ApiError(409, "INVALID_TRANSITION",
                       f"An experiment goes draft -> running -> stopped only, not {before.status} -> {nxt.status}",
                       {"from": before.status, "to": nxt.status})  # fmt: skip
    if before.status != "draft" and [v.key for v in nxt.variants] != [v["key"] for v in before.variants]:
        raise ApiError(409, "VARIANTS_LOCKED", "Variant keys and their order are fixed once an experiment has "
                       "started (weights may change)", {"status": before.status})  # fmt: skip


_OVERLAP = """
SELECT key FROM experiments
WHERE workspace_id = $1 AND id <> $2 AND status = 'running' AND namespace_name = $3
  AND namespace_start < $5 AND $4 < namespace_end
ORDER BY key LIMIT 1
"""


async def _check_namespace(conn: Any, workspace_id: uuid.UUID, exp_id: uuid.UUID, nxt: _Next) -> None:
    """Two running experiments of one namespace never share a unit: their ranges must not overlap."""
    if nxt.status != "running" or nxt.namespace is None:
        return
    ns = nxt.namespace
    other = await conn.fetchval(_OVERLAP, workspace_id, exp_id, ns.name, ns.start, ns.end)
    if other is not None:
        raise ApiError(409, "NAMESPACE_OVERLAP", f"Experiment '{other}' runs in namespace '{ns.name}' on an "
                       "overlapping range; choose a disjoint [start, end)",
                       {"namespace": ns.name, "experiment": other})  # fmt: skip


async def _sticky(
    conn: Any, before: ExperimentOut, nxt: _Next, events: tuple[asyncpg.Pool, uuid.UUID] | None = None
) -> str:
    """ "remote" once a running experiment changes how units are split after some were exposed: SDKs then
    ask the edge, which knows the recorded assignments, instead of deciding locally. Assignments are
    recorded beside the events: `events` is the pool of the workspace's instance when it is not the hub.
    There a stored `$exposure` event says "exposed" too: versions before 0150 recorded no assignment on
    an instance, and their exposures are still its history."""
    if before.sticky == "remote" or before.status != "running":
        return before.sticky
    moved = (
        [v.weight for v in nxt.variants] != [float(v["weight"]) for v in before.variants]
        or nxt.allocation != before.allocation
        or msgspec.to_builtins(nxt.targeting) != before.targeting
        or (None if nxt.namespace is None else msgspec.to_builtins(nxt.namespace)) != before.namespace
    )
    exposed = moved and await (conn if events is None else events[0]).fetchval(
        "SELECT EXISTS (SELECT 1 FROM experiment_assignments WHERE experiment_id = $1 AND bucket_version = $2)",
        before.id,
        before.bucket_version,
    )
    if moved and not exposed and events is not None:
        pool, workspace_id = events
        exposed = await pool.fetchval(_EXPOSED, workspace_id, before.key, before.bucket_version)
    return "remote" if exposed else "local"


async def _mirror(svc: Any, experiment: ExperimentOut, workspace_id: uuid.UUID) -> None:
    """After the hub's commit: the experiment's key on the workspace's instance, so its workers record
    assignments (eventplane/instance_config.py; the hub keeps its own by trigger). Every change writes it
    again, so one lost here is repaired by the next."""
    data = await svc.data.pool(workspace_id)
    if data is not svc.pool:
        await instance_config.mirror(data, experiment.id, workspace_id, experiment.key)


_EXPOSED = """
SELECT EXISTS (SELECT 1 FROM events WHERE workspace_id = $1 AND event_type = '$exposure'
               AND properties ->> 'experiment' = $2
               AND properties -> 'bucket_version' IN (to_jsonb($3::int), to_jsonb($3::text)))
"""


_UPDATE = f"""
UPDATE experiments SET name = $3, hypothesis = $4, status = $5, variants = $6::text::jsonb,
       targeting = $7::text::jsonb, allocation = $8, conversion_event = $9, value_property = $10,
       namespace_name = $11, namespace_start = $12, namespace_end = $13, sticky = $14,
       started_at = CASE WHEN $5 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
       stopped_at = CASE WHEN $5 = 'stopped' THEN coalesce(stopped_at, now()) ELSE stopped_at END,
       updated_at = now()
WHERE workspace_id = $1 AND key = $2
RETURNING {COLUMNS}
"""


async def update(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    key = path_key(request, "experiment_key", "experiment")
    who = await actor(request, workspace_id, None)
    data = await body(request, ExperimentPatch)
    permission = _permission_for(data)
    who.require(permission)
    svc = services(request)
    events = await svc.data.pool(workspace_id)
    instance = None if events is svc.pool else (events, workspace_id)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        await who.recheck(conn, permission)
        before = out(await _row(conn, workspace_id, key, lock=True))
        nxt = _merged(before, data)
        if _json(nxt) == _json(_merged(before, ExperimentPatch())):
            return reply(before)  # nothing changes: no entry, no new version
        _check_transition(before, nxt)
        _check(nxt.variants, nxt.allocation, nxt.targeting, nxt.namespace)
        await _check_namespace(conn, workspace_id, before.id, nxt)
        row = await conn.fetchrow(_UPDATE, workspace_id, key, nxt.name, nxt.hypothesis, nxt.status,
                                  _json(nxt.variants), _json(nxt.targeting), nxt.allocation, nxt.event_type,
                                  nxt.value_property, *_namespace_args(nxt.namespace),
                                  await _sticky(conn, before, nxt, instance))  # fmt: skip
        changed = out(row)
        action: audit.Action = "status" if nxt.status != before.status else "update"
        await flag_changes.committing(conn, who, action, audit.EXPERIMENT, key, before, changed)
    await _mirror(svc, changed, workspace_id)
    await flag_changes.published(svc, workspace_id)
    return reply(changed)


async def rerandomize(request: Request) -> Response:
    """A new salt and the next bucket version: every unit is assigned afresh (earlier sticky assignments
    belong to the old version), and results count the new version's exposures."""
    workspace_id = path_uuid(request, "workspace_id")
    key = path_key(request, "experiment_key", "experiment")
    who = await actor(request, workspace_id, p.EXPERIMENTS_WRITE)
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        await who.recheck(conn, p.EXPERIMENTS_WRITE)
        before = out(await _row(conn, workspace_id, key, lock=True))
        if before.status == "stopped":
            raise ApiError(409, "EXPERIMENT_STOPPED", "A stopped experiment is not re-randomized (it never runs "
                           "again); create a new one", {"status": before.status})  # fmt: skip
        row = await conn.fetchrow(
            "UPDATE experiments SET salt = $3, bucket_version = bucket_version + 1, sticky = 'local', "
            f"updated_at = now() WHERE workspace_id = $1 AND key = $2 RETURNING {COLUMNS}",
            workspace_id,
            key,
            salt(),
        )
        changed = out(row)
        await flag_changes.committing(conn, who, "rerandomize", audit.EXPERIMENT, key, before, changed)
    await _mirror(svc, changed, workspace_id)
    await flag_changes.published(svc, workspace_id)
    return reply(changed)


async def delete(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    key = path_key(request, "experiment_key", "experiment")
    who = await actor(request, workspace_id, p.EXPERIMENTS_WRITE)
    svc = services(request)
    async with limits.locked_workspace(svc.pool, workspace_id) as (conn, _):
        await who.recheck(conn, p.EXPERIMENTS_WRITE)
        before = out(await _row(conn, workspace_id, key, lock=True))
        await conn.execute("DELETE FROM experiments WHERE workspace_id = $1 AND key = $2", workspace_id, key)
        await flag_changes.committing(conn, who, "delete", audit.EXPERIMENT, key, before, None)
    data = await svc.data.pool(workspace_id)
    if data is not svc.pool:  # the hub's trigger removed its own row; the instance's goes here
        await instance_config.unmirror(data, before.id)
    await flag_changes.published(svc, workspace_id)
    return no_content()


WS = "/api/v1/workspaces/{workspace_id:uuid}/experiments"
ONE = WS + "/{experiment_key}"
_E = (400, 401, 403, 404)
ENDPOINTS = [
    Endpoint("POST", WS, create, "Create an experiment (as a draft)", ExperimentIn, ExperimentOut, 201,
             auth="session_or_key", errors=(*_E, 409)),
    Endpoint("GET", WS, list_experiments, "A workspace's experiments", None, Page[ExperimentOut],
             auth="session_or_key", query=("limit", "cursor"), errors=_E),
    Endpoint("GET", ONE, get, "One experiment", None, ExperimentOut, auth="session_or_key", errors=_E),
    Endpoint("PATCH", ONE, update, "Change an experiment or its status (keys with experiments:write: allocation "
             "only)", ExperimentPatch, ExperimentOut, auth="session_or_key", errors=(*_E, 409)),
    Endpoint("DELETE", ONE, delete, "Delete an experiment", None, None, 204, auth="session_or_key", errors=_E),
    Endpoint("POST", ONE + "/rerandomize", rerandomize, "Re-randomize: a new salt and bucket version", None,
             ExperimentOut, auth="session_or_key", errors=(*_E, 409)),
]  # fmt: skip
