"""What of a workspace's configuration lives on its instance, beside its events: its webhook destinations
(with their outbox and delivery log: the trigger that fills the outbox runs where events are stored, and
that instance's workers deliver it) and `experiment_keys`, each experiment's (id, workspace_id, key), which
the workers' assignment statement joins (workers/store.py).

On the hub, `experiment_keys` follows `experiments` by trigger. For a workspace on another instance the api
mirrors a row on every create, change and delete of an experiment (`mirror`, `unmirror`), and a move or
`eventplane migrate` rewrites the instance's rows from the hub's experiments (`sync_experiment_keys`): the
hub's `experiments` stays the one source, and any missed mirror is repaired by the next change of that
experiment. Mirroring keeps the assignment statement's join (so exposures of unknown experiments are not
recorded, and deleting an experiment removes its assignments) on every instance alike.
"""

from __future__ import annotations

import uuid

import asyncpg

from eventplane import db, instances
from eventplane.settings import Settings

_MIRROR = """
INSERT INTO experiment_keys (id, workspace_id, key) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, key = excluded.key
"""


async def mirror(data: asyncpg.Pool, experiment_id: uuid.UUID, workspace_id: uuid.UUID, key: str) -> None:
    """The experiment's row on the workspace's instance (idempotent). A row of the same key left by a
    deleted experiment whose unmirror was lost goes first, with its assignments."""
    async with data.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM experiment_keys WHERE workspace_id = $1 AND key = $2 AND id <> $3",
                           workspace_id, key, experiment_id)  # fmt: skip
        await conn.execute(_MIRROR, experiment_id, workspace_id, key)


async def unmirror(data: db.Conn | asyncpg.Pool, experiment_id: uuid.UUID) -> None:
    """The deleted experiment's row, and by cascade its assignments, gone from the instance."""
    await data.execute("DELETE FROM experiment_keys WHERE id = $1", experiment_id)


async def sync_experiment_keys(hub: db.Conn | asyncpg.Pool, data: db.Conn, workspace_id: uuid.UUID) -> None:
    """The instance's rows of the workspace made equal to the hub's experiments. `data` is a connection of
    the instance (the caller's transaction)."""
    rows = await hub.fetch("SELECT id, key FROM experiments WHERE workspace_id = $1", workspace_id)
    ids = [r["id"] for r in rows]
    await data.execute("DELETE FROM experiment_keys WHERE workspace_id = $1 AND NOT (id = ANY($2::uuid[]))",
                       workspace_id, ids)  # fmt: skip
    for r in rows:
        await data.execute(_MIRROR, r["id"], workspace_id, r["key"])


async def upgrade(settings: Settings) -> list[str]:
    """`eventplane migrate` after the hub: every registered instance's database migrated too, and what an
    earlier version kept in the hub for workspaces placed there (webhook destinations, written to the hub
    and never delivered) brought to the instance, with the experiments' keys. Safe to run again. Returns
    the instances upgraded."""
    hub = await asyncpg.connect(settings.dsn)
    try:
        done = []
        for instance in (await instances.registry(hub)).values():
            await db.migrate(instance.database_url)
            conn = await asyncpg.connect(instance.database_url)
            try:
                for workspace_id in [r[0] for r in await hub.fetch(
                        "SELECT id FROM workspaces WHERE instance = $1 ORDER BY id", instance.name)]:  # fmt: skip
                    async with conn.transaction():
                        await sync_experiment_keys(hub, conn, workspace_id)
                        brought = await _bring_webhooks(hub, conn, workspace_id)
                    if brought:  # after the instance's commit: a crash between leaves a copy the next run skips
                        await hub.execute("DELETE FROM webhook_destinations WHERE workspace_id = $1", workspace_id)
            finally:
                await conn.close()
            done.append(instance.name)
        return done
    finally:
        await hub.close()


_DESTINATION_COLUMNS = (
    "id, workspace_id, url, event_types, enabled, signing_secret, consecutive_failures, failures_total, "
    "delivered_total, failing_since, next_attempt_at, paused_at, created_at, updated_at"
)


async def _bring_webhooks(hub: asyncpg.Connection, data: asyncpg.Connection, workspace_id: uuid.UUID) -> bool:
    """The hub's destinations of a workspace on another instance copied there (their hub outbox is empty:
    its events were never stored in the hub). True when there were any."""
    rows = await hub.fetch(f"SELECT {_DESTINATION_COLUMNS} FROM webhook_destinations WHERE workspace_id = $1",
                           workspace_id)  # fmt: skip
    if not rows:
        return False
    columns = [c.strip() for c in _DESTINATION_COLUMNS.split(",")]
    marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
    for r in rows:
        await data.execute(f"INSERT INTO webhook_destinations ({_DESTINATION_COLUMNS}) VALUES ({marks}) "
                           "ON CONFLICT (id) DO NOTHING", *r.values())  # fmt: skip
    return True
