"""Access tokens (JWT) and refresh tokens (rows in `sessions`).

An access token lives 30 minutes and names its session (`sid`); every request checks that the session
is still open, so logout takes effect at once. A refresh token is random, stored as its SHA-256, and
replaced on every use; every replaced one is kept (`session_refresh_tokens`), and presenting any of them
again (someone kept a copy) closes the session. A session ends `session_max_age` after login: refreshing
never extends that.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt

from api.wire import TokensOut
from eventplane.settings import Settings

ISSUER = "eventplane"
AUDIENCE = "eventplane-api"
ALGORITHM = "HS256"
REFRESH_PREFIX = "ept_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


def access_token(settings: Settings, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(user_id), "sid": str(session_id),
              "iat": now, "exp": now + settings.access_token_ttl}  # fmt: skip
    return jwt.encode(claims, _signing_key(settings), algorithm=ALGORITHM)


class BadToken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_access(settings: Settings, token: str) -> AccessClaims:
    """The claims of a valid, unexpired access token; raises BadToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(settings),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid"]},
        )
        return AccessClaims(uuid.UUID(str(claims["sub"])), uuid.UUID(str(claims["sid"])))
    except jwt.ExpiredSignatureError:
        raise BadToken("Access token has expired; refresh it") from None
    except (jwt.InvalidTokenError, ValueError):
        raise BadToken("Access token is invalid") from None


async def open_session(
    conn: asyncpg.Connection | asyncpg.Pool, settings: Settings, user_id: uuid.UUID, client: str = ""
) -> TokensOut:
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO sessions (user_id, refresh_hash, expires_at, client) "
        "VALUES ($1, $2, now() + make_interval(secs => least($3::int, $4::int)), $5) RETURNING id",
        user_id,
        token_hash(refresh),
        settings.refresh_token_ttl,
        settings.session_max_age,
        client,
    )
    return _tokens(settings, user_id, session_id, refresh)


def _tokens(settings: Settings, user_id: uuid.UUID, session_id: uuid.UUID, refresh: str) -> TokensOut:
    return TokensOut(
        access_token=access_token(settings, user_id, session_id),
        refresh_token=refresh,
        expires_in=settings.access_token_ttl,
    )


_ROTATE = """
UPDATE sessions SET refresh_hash = $2, last_used_at = now(),
    expires_at = least(now() + make_interval(secs => $3), created_at + make_interval(secs => $4))
WHERE refresh_hash = $1 AND revoked_at IS NULL AND expires_at > now()
  AND created_at + make_interval(secs => $4) > now()
RETURNING id, user_id
"""


async def rotate_refresh(pool: asyncpg.Pool, settings: Settings, refresh: str) -> TokensOut | None:
    """New tokens for a valid refresh token (which stops working); None when it is not valid."""
    old = token_hash(refresh)
    new = REFRESH_PREFIX + secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(_ROTATE, old, token_hash(new), settings.refresh_token_ttl, settings.session_max_age)
        if row is not None:
            await conn.execute("INSERT INTO session_refresh_tokens (token_hash, session_id) VALUES ($1, $2)", old,
                               row["id"])  # fmt: skip
            return _tokens(settings, row["user_id"], row["id"], new)
        # Any replaced token presented again: the session's tokens have leaked; end it.
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL "
            "AND id = (SELECT session_id FROM session_refresh_tokens WHERE token_hash = $1)",
            old,
        )
        return None


async def close_by_refresh(pool: asyncpg.Pool, refresh: str) -> None:
    await pool.execute(
        "UPDATE sessions SET revoked_at = now() WHERE refresh_hash = $1 AND revoked_at IS NULL", token_hash(refresh)
    )


async def close_others(conn: Any, user_id: uuid.UUID, keep: uuid.UUID | None) -> int:
    """End every open session of the user but `keep` (None: all of them); returns how many ended."""
    ended: str = await conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
        user_id,
        keep,
    )
    return int(ended.split()[-1])


async def close(pool: asyncpg.Pool, session_id: uuid.UUID) -> None:
    await pool.execute("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", session_id)


def _signing_key(settings: Settings) -> str:
    assert settings.jwt_secret is not None, "api/app.py's lifespan sets the JWT secret"
    return str(settings.jwt_secret)
