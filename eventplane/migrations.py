"""Numbered schema migrations: `migrations/NNNN_short_name.sql`, each applied once, in order, in its own
transaction, and recorded in `schema_migrations`. A fresh database gets schema.sql whole instead (which
must equal every migration applied in order) and records every file as applied.

Our own small runner rather than yoyo-migrations: yoyo wants a synchronous DB-API driver and its own
bookkeeping, while we need asyncpg, our advisory lock and the schema.sql fast install.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger("eventplane.migrations")
ROOT = Path(__file__).resolve().parent.parent  # the source tree (installed editable, as `make setup` does)
MIGRATIONS_DIR = ROOT / "migrations"
SCHEMA_PATH = ROOT / "schema.sql"
LOCK = 0x45504D47  # "EPMG": one migrator at a time
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# The runner's own bookkeeping, made by the runner (so it is in neither schema.sql nor a migration).
_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


class MigrationError(Exception):
    """The database and the migration files disagree in a way that needs a person."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str  # sha256 hex of the file's bytes

    @property
    def file_name(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every `NNNN_name.sql` in `directory`, by version; a misnamed or duplicate .sql file is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_short_name.sql (lower case, digits, _)")
        version = int(match[1])
        if version in found:
            raise MigrationError(f"{path}: version {version:04d} is also {found[version].file_name}")
        data = path.read_bytes()
        found[version] = Migration(version, match[2], data.decode(), hashlib.sha256(data).hexdigest())
    if not found:
        raise MigrationError(f"no migrations in {directory}")
    return [found[v] for v in sorted(found)]


async def apply(
    conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR, schema_path: Path = SCHEMA_PATH
) -> list[str]:
    """Bring the database up to date; returns the file names applied (all of them on a fresh install)."""
    migrations, schema = discover(directory), _read(schema_path)
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK)
    try:
        return await _apply_locked(conn, migrations, schema)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK)


async def _apply_locked(conn: asyncpg.Connection, migrations: list[Migration], schema: str) -> list[str]:
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
        if await conn.fetchval("SELECT to_regclass('workspaces') IS NULL"):
            async with conn.transaction():
                await conn.execute(_LEDGER)
                await conn.execute(schema)
                for migration in migrations:
                    await _record(conn, migration)
            log.info("fresh install from schema.sql", extra={"migrations": [m.file_name for m in migrations]})
            return [m.file_name for m in migrations]
        # Made before this runner: its schema is the baseline, 0001.
        async with conn.transaction():
            await conn.execute(_LEDGER)
            await _record(conn, migrations[0])
        log.info("existing schema recorded as %s", migrations[0].file_name)
    applied = {r["version"]: r for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")}
    _check(applied, migrations)
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await _record(conn, migration)
        log.info("applied %s", migration.file_name)
        done.append(migration.file_name)
    return done


def _check(applied: dict[int, asyncpg.Record], migrations: list[Migration]) -> None:
    files = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        migration = files.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:04d}_{row['name']}.sql applied, which this release lacks; "
                "run a release that has it"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"{migration.file_name} changed after it was applied (checksum {row['checksum'][:12]} recorded, "
                f"{migration.checksum[:12]} on disk); restore the file and put the change in a new migration"
            )


def _read(path: Path) -> str:
    return path.read_text()


async def _record(conn: asyncpg.Connection, migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        migration.version,
        migration.name,
        migration.checksum,
    )
