"""The `evaluate` row's flag: one 3-rule flag in every bench workspace, and the bodies that evaluate it.

The flag is what a product team typically ships: rules on plan, country and app version (each with its own
rollout), then a 30% rollout for everyone else, so an evaluation matches conditions and hashes the unit.
"""

from __future__ import annotations

import random
import uuid

import asyncpg
import orjson

from eventplane import flagconfig
from loadtests.payloads import ID

FLAG_KEY = "bench-checkout"
PATH = f"/api/v1/feature-flags/{FLAG_KEY}/evaluate"
RULES = [
    {"id": "pro", "match": "all", "rollout": 100,
     "conditions": [{"attribute": "plan", "operator": "in", "value": ["pro", "enterprise"]}]},
    {"id": "eu", "match": "any", "rollout": 50,
     "conditions": [{"attribute": "country", "operator": "in", "value": ["de", "fr", "nl"]},
                    {"attribute": "email", "operator": "contains", "value": "@example.eu"}]},
    {"id": "new-app", "match": "all", "rollout": 20,
     "conditions": [{"attribute": "app_version", "operator": "semver_gte", "value": "2.4.0"}]},
]  # fmt: skip


async def seed(dsn: str, workspace_ids: list[str]) -> None:
    """The flag in each workspace, committed as the api does (with its version bump)."""
    conn = await asyncpg.connect(dsn)
    try:
        for ws in workspace_ids:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO feature_flags (workspace_id, key, name, enabled, salt, rollout, rules) "
                    "VALUES ($1, $2, $2, true, $3, 30, $4::jsonb)",
                    uuid.UUID(ws), FLAG_KEY, uuid.uuid4().hex[:12], orjson.dumps(RULES).decode(),
                )  # fmt: skip
                await flagconfig.bump(conn, uuid.UUID(ws))
    finally:
        await conn.close()


def bodies(count: int, seed: int = 3) -> list[bytes]:
    """Evaluation contexts like a backend sends; "@ID@" makes each request's user a new one."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        attributes = {
            "plan": rng.choice(("free", "free", "pro", "enterprise")),
            "country": rng.choice(("us", "de", "fr", "jp", "br")),
            "email": f"user{i}@example.{rng.choice(('com', 'eu'))}",
            "app_version": rng.choice(("2.3.9", "2.4.0", "2.5.1-beta.1", "3.0.0")),
        }
        out.append(orjson.dumps({"user_id": f"user-{ID}", "attributes": attributes}))
    return out
