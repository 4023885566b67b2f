"""The instance registry and placement (eventplane/instances.py), against the suite's real servers."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from eventplane import instances, tenants
from eventplane.settings import Settings
from tests.conftest import registered_instance


async def _place_new(pool: asyncpg.Pool, instance: str | None = None) -> str | None:
    slug = f"pl-{uuid.uuid4().hex[:10]}"
    workspace = await tenants.create_workspace(pool, name=slug, slug=slug, instance=instance)
    placed: str | None = workspace["instance"]
    return placed


async def test_without_instances_workspaces_stay_on_the_hub(pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT count(*) FROM instances") == 0
    assert await _place_new(pool) is None
    assert await _place_new(pool, "default") is None


async def test_least_loaded_active_instance_and_named_ones(settings: Settings, pool: asyncpg.Pool) -> None:
    async with registered_instance(settings, "pa") as a, registered_instance(settings, "pb") as b:
        assert a.name == "pa" and b.name == "pb"
        placed = [await _place_new(pool) for _ in range(4)]
        assert sorted(placed, key=str) == ["pa", "pa", "pb", "pb"]  # by workspace count, ties by name
        assert await _place_new(pool, "pb") == "pb"  # pb: 3 now
        assert await _place_new(pool) == "pa"
        assert await _place_new(pool) == "pa"  # 4 and 3: pb would be next, unless it drains
        assert await instances.set_state(pool, "pb", "draining")
        assert await _place_new(pool) == "pa"
        with pytest.raises(instances.PlacementError) as draining:
            await _place_new(pool, "pb")
        assert (draining.value.status, draining.value.code) == (409, "INSTANCE_DRAINING")
        with pytest.raises(instances.PlacementError) as unknown:
            await _place_new(pool, "nowhere")
        assert (unknown.value.status, unknown.value.code) == (400, "INSTANCE_UNKNOWN")
        listed = {i["name"]: i for i in await instances.load(pool)}
        assert (listed["pa"]["workspaces"], listed["pb"]["workspaces"]) == (5, 3)
        assert listed["pb"]["state"] == "draining" and listed["default"]["hub"] is True


async def test_add_checks_the_name_and_the_servers(settings: Settings, pool: asyncpg.Pool) -> None:
    for bad in ("default", "Upper", "-x", "a" * 41):
        with pytest.raises(ValueError):
            await instances.add(pool, bad, settings.dsn, settings.redis_dsn)
    with pytest.raises(OSError):  # nothing listens there: nothing is registered
        await instances.add(pool, "gone", "postgresql://postgres@127.0.0.1:1/postgres", settings.redis_dsn)
    assert await pool.fetchval("SELECT count(*) FROM instances") == 0


def test_redact_hides_passwords_only() -> None:
    assert instances.redact("redis://:s3cret@10.0.0.1:6379/0") == "redis://:***@10.0.0.1:6379/0"
    assert instances.redact("postgresql://ep:pw@db.internal/ev") == "postgresql://ep:***@db.internal/ev"
    assert (
        instances.redact("postgresql://postgres@127.0.0.1:5432/postgres")
        == "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    assert "s3cret" not in repr(instances.Instance("x", "postgresql://u:s3cret@h/d", "redis://:s3cret@h"))
    # In the query string too (asyncpg and redis-py both take it there); other parameters are kept.
    assert instances.redact("postgresql://u@h/db?password=s3cret&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert instances.redact("redis://h:6379/0?Password=s3cret") == "redis://h:6379/0?Password=***"
