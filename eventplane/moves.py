"""Moving a workspace to another instance (`eventplane workspace move SLUG --to NAME`): nothing lost,
nothing doubled, and resumable.

Each step is recorded in the hub (`workspace_moves.step`) once done, so running the move again resumes
after the last one recorded; each is safe to run twice.

1. holding: the target's workers hold (defer) jobs of the workspace (a set in the target's Redis,
   `RedisNames.held`), so nothing of it is stored there before its history is.
2. routed: the source's webhook destinations of the workspace are handed off (its workers claim them no
   more), `workspaces.instance` is the target, and the workspace's keys are pushed to every edge (the
   key-cache entry names the instance), which queue its events on the target from then on.
3. drained: after the fence, wait until the source's queue holds no job of the workspace: everything
   queued there is committed to the source's Postgres. The fence: a request whose key was looked up
   before the push still goes to the source, once its body has arrived (at most EVENTPLANE_BODY_TIMEOUT,
   or it is refused) and its enqueue has been tried (at most the edge's enqueue timeout). So the move
   waits body timeout + enqueue timeout + 1 s, with the body timeout of its own settings: give the
   command the edges' EVENTPLANE_BODY_TIMEOUT. Then wait until no webhook batch of the workspace is in
   flight on the source (at most a claim's lease, 2 x EVENTPLANE_WEBHOOK_TIMEOUT + 5 s).
4. copied: in one transaction on the target, its rows of the workspace are replaced by the source's:
   `events`, the `event_ids` ledger, `usage_daily`, `dead_letters`, `deletions` (the target had none: step 1;
   deletion requests made on the target since routing are kept, and every request runs again over the
   copied history), `experiment_assignments`, and the webhook destinations with their outbox (what the
   source has not delivered) and log, read from one snapshot of the source; the target's `experiment_keys`
   are written from the hub's experiments. Triggers are off for that transaction
   (session_replication_role), so history is not sent to webhooks again.
5. released: the hold ends; the target's workers store the held jobs, and the copied ledger drops any
   event the source had stored already (an SDK's retry that reached both).
Then the source's rows of the workspace are deleted and the move's record with them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from arq.constants import job_key_prefix
from redis.asyncio import Redis

from eventplane import apikeys, db, instance_config, instances, queue
from eventplane.instances import Instance
from eventplane.redis_client import connect_redis
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings

STEPS = ("holding", "routed", "drained", "copied", "released")
EDGE_ENQUEUE_TIMEOUT = 3.0  # ingest/batcher.py ENQUEUE_TIMEOUT (the core imports no process; a test ties them)
POLL_SECONDS = 0.2
# The tables of a workspace's event data, all keyed by workspace_id (dead_letters' is text), then its
# webhook destinations with their outbox and log (by destination; after the destinations, which they refer
# to). experiment_keys is not copied: it is written from the hub's experiments (eventplane/instance_config.py).
DATA_TABLES = ("events", "event_ids", "usage_daily", "dead_letters", "deletions", "experiment_assignments",
               "webhook_destinations", "webhook_outbox", "webhook_deliveries")  # fmt: skip
_OF_DESTINATIONS = "destination_id IN (SELECT id FROM webhook_destinations WHERE workspace_id = $1)"
_WHERE = {"webhook_outbox": _OF_DESTINATIONS, "webhook_deliveries": _OF_DESTINATIONS}
_ORDER = {"webhook_outbox": " ORDER BY id", "webhook_deliveries": " ORDER BY id"}  # the target numbers them anew
COPY_BATCH = 5000


class MoveError(Exception):
    """A move that cannot start or go on (no such workspace or instance, another move in progress)."""


@dataclass(frozen=True)
class Plan:
    workspace_id: uuid.UUID
    source: Instance
    target: Instance
    step: str | None  # the last step done


async def move(
    settings: Settings,
    slug: str,
    to: str,
    *,
    stop_after: str | None = None,
    fence_seconds: float | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> str | None:
    """Move (or go on moving) workspace `slug` to instance `to`. Returns the last step done: "released"
    when the move is complete, `stop_after` when asked to stop there (tests interrupt moves so)."""
    fence = settings.body_timeout + EDGE_ENQUEUE_TIMEOUT + 1.0 if fence_seconds is None else fence_seconds
    hub = await db.create_pool(settings.dsn, min_size=1, max_size=2)
    hub_redis = connect_redis(settings.redis_dsn)
    try:
        plan = await _plan(hub, settings, slug, to)
        names = RedisNames(settings.redis_prefix)
        step = plan.step
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("holding", lambda: _hold(plan, names)),
            ("routed", lambda: _route(hub, hub_redis, settings, plan)),
            ("drained", lambda: _drain(plan, names, fence, say, _lease(settings))),
            ("copied", lambda: copy(plan, hub)),
            ("released", lambda: _release(plan, names)),
        ]
        for name, run in steps:
            if step is not None and STEPS.index(step) >= STEPS.index(name):
                if name == "routed" and step != "released":
                    await _publish(hub, hub_redis, settings, plan)  # an interrupted push is pushed again
                continue
            await run()
            await _record(hub, plan, name)
            step = name
            say(f"{slug}: {name}")
            if name == stop_after:
                return step
        await _clean(plan)
        await hub.execute("DELETE FROM workspace_moves WHERE workspace_id = $1", plan.workspace_id)
        say(f"{slug}: on {plan.target.name}; its rows on {plan.source.name} deleted")
        return step
    finally:
        await db.close_pool(hub)
        await hub_redis.aclose()


async def _plan(hub: asyncpg.Pool, settings: Settings, slug: str, to: str) -> Plan:
    row = await hub.fetchrow("SELECT id, instance FROM workspaces WHERE slug = $1", slug)
    if row is None:
        raise MoveError(f"no workspace with slug '{slug}'")
    target_column = instances.column(to)
    current = await hub.fetchrow("SELECT source, target, step FROM workspace_moves WHERE workspace_id = $1", row["id"])
    if current is None:
        if row["instance"] == target_column:
            raise MoveError(f"workspace '{slug}' is on {instances.label(target_column)} already")
        source_column, step = row["instance"], None
    elif current["target"] != target_column:
        raise MoveError(f"workspace '{slug}' is being moved to {instances.label(current['target'])}: "
                        "finish that move first")  # fmt: skip
    else:
        source_column, step = current["source"], current["step"]
    source = await instances.get(hub, settings, instances.label(source_column))
    target = await instances.get(hub, settings, to)
    if target is None:
        raise MoveError(f"no instance named '{to}'")
    assert source is not None, "workspaces.instance references instances"
    if current is None:
        await hub.execute("INSERT INTO workspace_moves (workspace_id, source, target, step) VALUES ($1, $2, $3, NULL)",
                          row["id"], source_column, target_column)  # fmt: skip
    return Plan(row["id"], source, target, step)


async def _record(hub: asyncpg.Pool, plan: Plan, step: str) -> None:
    await hub.execute("UPDATE workspace_moves SET step = $2, updated_at = now() WHERE workspace_id = $1",
                      plan.workspace_id, step)  # fmt: skip


async def _hold(plan: Plan, names: RedisNames) -> None:
    redis = connect_redis(plan.target.redis_url)
    try:
        await redis.sadd(names.held, str(plan.workspace_id))  # type: ignore[misc]
    finally:
        await redis.aclose()


def _lease(settings: Settings) -> float:
    """How long a webhook claim may be in flight (workers/webhooks.py Deliverer's lease)."""
    return 2 * settings.webhook_timeout + 5


async def _route(hub: asyncpg.Pool, hub_redis: Redis, settings: Settings, plan: Plan) -> None:
    # The source's workers stop claiming the workspace's webhook destinations first: the target delivers
    # what the source has not, from the copied outbox (the api writes new ones on the target from now on).
    source = await asyncpg.connect(plan.source.database_url)
    try:
        await source.execute("UPDATE webhook_destinations SET handed_off_at = coalesce(handed_off_at, now()) "
                             "WHERE workspace_id = $1", plan.workspace_id)  # fmt: skip
    finally:
        await source.close()
    await hub.execute("UPDATE workspaces SET instance = $2, updated_at = now() WHERE id = $1", plan.workspace_id,
                      instances.column(plan.target.name))  # fmt: skip
    await _publish(hub, hub_redis, settings, plan)


async def _publish(hub: asyncpg.Pool, hub_redis: Redis, settings: Settings, plan: Plan) -> None:
    await apikeys.invalidate_workspace(hub, hub_redis, apikeys.redis_keys(settings), plan.workspace_id)


async def _drain(plan: Plan, names: RedisNames, fence_seconds: float, say: Callable[[str], None], lease: float) -> None:
    await asyncio.sleep(fence_seconds)  # the fence: see the module docstring
    redis = connect_redis(plan.source.redis_url)
    try:
        said = 0.0
        while (left := await queued_jobs(redis, names, str(plan.workspace_id))) > 0:
            if time.monotonic() - said > 5:
                say(f"waiting for {left} queued jobs on {plan.source.name}")
                said = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await redis.aclose()
    await _deliveries_settled(plan, lease, say)


# A handed-off destination with a claim in flight: a claim pushes next_attempt_at a lease ahead, and its
# outcome sets it back to now (or to a backoff, which this cannot tell from a claim: waited out to the lease).
_IN_FLIGHT = """
SELECT count(*) FROM webhook_destinations WHERE workspace_id = $1 AND next_attempt_at > now()
  AND next_attempt_at > handed_off_at AND handed_off_at > now() - make_interval(secs => $2)
"""


async def _deliveries_settled(plan: Plan, lease: float, say: Callable[[str], None]) -> None:
    """Wait until no batch of the workspace is being sent from the source: one in flight when it was
    handed off would otherwise be sent again by the target from the copied outbox."""
    conn = await asyncpg.connect(plan.source.database_url)
    try:
        said = False
        while (left := await conn.fetchval(_IN_FLIGHT, plan.workspace_id, lease)) > 0:
            if not said:
                say(f"waiting for {left} webhook deliveries in flight on {plan.source.name}")
                said = True
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await conn.close()


async def queued_jobs(redis: Redis, names: RedisNames, workspace_id: str) -> int:
    """Jobs of this workspace in this queue not yet committed (a job's count leaves `pending` only after
    its commit; a job whose arq key is gone will never run)."""
    found, cursor = 0, 0
    while True:
        cursor, counts = await redis.hscan(names.pending, cursor, count=500)
        ids = [i.decode() for i in counts]
        if ids:
            jobs = await redis.mget([job_key_prefix + i for i in ids])
            for raw in jobs:
                if raw is not None and _workspace_of(raw) == workspace_id:
                    found += 1
        if cursor == 0:
            return found


def _workspace_of(raw: bytes) -> str | None:
    job = queue.deserialize(raw)
    rows = job.get("a", [[]])[0] if isinstance(job, dict) else []
    return str(rows[0][0]) if rows else None


async def copy(plan: Plan, hub: asyncpg.Pool) -> None:
    """Replace the target's rows of the workspace by the source's, in one target transaction."""
    source = await asyncpg.connect(plan.source.database_url)
    target = await asyncpg.connect(plan.target.database_url)
    try:
        days = await source.fetch(
            "SELECT (received_at AT TIME ZONE 'UTC')::date AS day FROM events WHERE workspace_id = $1 "
            "UNION SELECT day FROM event_ids WHERE workspace_id = $1",  # a ledger row may outlive its event
            plan.workspace_id,
        )
        for day in days:  # old days need their partitions on the target
            await db.ensure_partitions(target, around=day["day"])
        # One snapshot of the source for every table (a deletion finishing meanwhile is seen in all or none).
        async with target.transaction(), source.transaction(isolation="repeatable_read", readonly=True):
            await target.execute("SET LOCAL session_replication_role = replica")  # no triggers: no webhooks again
            for table in DATA_TABLES:
                key = _key(table, plan.workspace_id)
                where = _WHERE.get(table, "workspace_id = $1")
                if table in ("deletions", "webhook_destinations"):  # those made on the target since routing are kept
                    ids = [r["id"] for r in await source.fetch(f"SELECT id FROM {table} WHERE workspace_id = $1", key)]
                    if table == "webhook_destinations":  # no cascade with triggers off: a rerun's copies go
                        for child in ("webhook_outbox", "webhook_deliveries"):
                            await target.execute(f"DELETE FROM {child} WHERE destination_id = ANY($1)", ids)
                    await target.execute(f"DELETE FROM {table} WHERE workspace_id = $1 AND id = ANY($2)", key, ids)
                elif table not in _WHERE:  # the outbox and log of a destination go with it (deleted just above)
                    await target.execute(f"DELETE FROM {table} WHERE workspace_id = $1", key)
                columns = await _copied_columns(target, table)
                quoted = ", ".join(f'"{c}"' for c in columns)
                select = f"SELECT {quoted} FROM {table} WHERE {where}{_ORDER.get(table, '')}"
                rows = _rows(source, select, key)
                await target.copy_records_to_table(table, records=rows, columns=columns)
            # Every request runs again over the copied history: one made since routing may have finished on
            # the target before the source's events arrived (a rerun of a finished one deletes nothing).
            await target.execute(
                "UPDATE deletions SET status = 'pending', finished_at = NULL WHERE workspace_id = $1 "
                "AND status = 'done'",
                plan.workspace_id,
            )
            # The target's workers deliver the copied destinations from the copied outbox, at once.
            await target.execute("UPDATE webhook_destinations SET handed_off_at = NULL, next_attempt_at = now() "
                                 "WHERE workspace_id = $1", plan.workspace_id)  # fmt: skip
            await instance_config.sync_experiment_keys(hub, target, plan.workspace_id)
    finally:
        await source.close()
        await target.close()


def _key(table: str, workspace_id: uuid.UUID) -> object:
    return str(workspace_id) if table == "dead_letters" else workspace_id


async def _copied_columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """Every column but those a sequence fills (the target numbers its own rows)."""
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
        "AND coalesce(column_default, '') NOT LIKE 'nextval(%' ORDER BY ordinal_position",
        table,
    )
    return [r["column_name"] for r in rows]


async def _rows(conn: asyncpg.Connection, query: str, key: object) -> AsyncIterator[tuple[object, ...]]:
    async for record in conn.cursor(query, key, prefetch=COPY_BATCH):
        yield tuple(record)


async def _release(plan: Plan, names: RedisNames) -> None:
    redis = connect_redis(plan.target.redis_url)
    try:
        await redis.srem(names.held, str(plan.workspace_id))  # type: ignore[misc]
    finally:
        await redis.aclose()


async def _clean(plan: Plan) -> None:
    """The source's rows of the workspace: copied to the target, no longer read by anyone."""
    conn = await asyncpg.connect(plan.source.database_url)
    try:
        async with conn.transaction():
            for table in DATA_TABLES:
                if table not in _WHERE:  # a destination's outbox and log go with it (foreign key)
                    await conn.execute(f"DELETE FROM {table} WHERE workspace_id = $1", _key(table, plan.workspace_id))
            if plan.source.name != instances.DEFAULT:  # the hub's keys follow its experiments
                await conn.execute("DELETE FROM experiment_keys WHERE workspace_id = $1", plan.workspace_id)
    finally:
        await conn.close()
