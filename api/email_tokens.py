"""Single-use tokens sent by email (verify an address, reset a password, confirm a new address).

Random, stored as SHA-256 (`email_tokens`), bound to the address they were sent to; a new token of a
purpose replaces the user's unused ones of that purpose; using one marks it used in the same statement,
so two requests racing with one token cannot both succeed.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Literal

from api.limits import Conn
from api.sessions import token_hash

Purpose = Literal["verify", "reset", "email_change"]
PREFIX: dict[str, str] = {"verify": "epv_", "reset": "epr_", "email_change": "epe_"}


async def issue(conn: Conn, user_id: uuid.UUID, purpose: Purpose, email: str, ttl: int) -> str:
    token = PREFIX[purpose] + secrets.token_urlsafe(32)
    await conn.execute("DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
                       user_id, purpose)  # fmt: skip
    await conn.execute(
        "INSERT INTO email_tokens (user_id, purpose, email, token_hash, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        user_id,
        purpose,
        email,
        token_hash(token),
        ttl,
    )
    return token


async def consume(conn: Conn, purpose: Purpose, token: str) -> Any:
    """The (user_id, email) row of a valid unused token, now used; None when invalid, used or expired."""
    return await conn.fetchrow(
        "UPDATE email_tokens SET used_at = now() WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL "
        "AND expires_at > now() RETURNING user_id, email",
        token_hash(token),
        purpose,
    )
