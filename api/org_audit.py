"""Audit-log entries of org changes (the org, its members and tokens, its workspaces), in the same table
as flag changes (api/audit.py), written in the change's own transaction where there is one."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from api.limits import Conn
from api.org_access import OrgCaller

_encoder = msgspec.json.Encoder()
_INSERT = """
INSERT INTO audit_log (org_id, workspace_id, actor_user_id, actor_key_id, action, entity_type, entity_key,
                       before, after)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9::text::jsonb)
"""


def _json(snapshot: Any) -> str | None:
    return None if snapshot is None else _encoder.encode(snapshot).decode()


async def record(conn: Conn | asyncpg.Pool, who: OrgCaller, action: str, entity_type: str, entity_key: str,
                 before: Any = None, after: Any = None, workspace_id: uuid.UUID | None = None) -> None:  # fmt: skip
    """`actor_key_id` holds the org token's id when a token acted."""
    await conn.execute(_INSERT, who.org_id, workspace_id, who.user_id, who.token_id, action, entity_type, entity_key,
                       _json(before), _json(after))  # fmt: skip
