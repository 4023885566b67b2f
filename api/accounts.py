"""Users and sessions: sign up, log in, refresh, log out, me."""

from __future__ import annotations

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from api import access, auth_cookie, email_tokens, ratelimit, sessions
from api.errors import auth_error, conflict
from api.rest import body, convert, no_content, optional_body, reply
from api.routing import Endpoint
from api.state import services
from api.wire import LoginIn, RefreshIn, SignupIn, TokensOut, UserOut
from eventplane import mail_templates
from eventplane.errors import ApiError
from eventplane.mail import queue_mail
from eventplane.settings import Settings

USER_COLUMNS = "id, email, name, email_verified_at IS NOT NULL AS email_verified, created_at"


def client_address(request: Request) -> str:
    # The ASGI client host; uvicorn sets it from proxy headers only for EVENTPLANE_TRUSTED_PROXIES.
    return request.client.host if request.client else "unknown"


def client_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:200].replace("\x00", "")


async def signup(request: Request) -> Response:
    data = await body(request, SignupIn)
    svc = services(request)
    s = svc.settings
    await ratelimit.hit(svc.redis, ratelimit.bucket(s.redis_prefix, "signup-ip", client_address(request)),
                        s.signup_limit_per_ip, s.signup_window_seconds)  # fmt: skip
    password_hash = await svc.passwords.hash(data.password)
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING {USER_COLUMNS}",
                data.email.strip(),
                data.name.strip(),
                password_hash,
            )
            assert row is not None  # INSERT ... RETURNING
            token = await email_tokens.issue(conn, row["id"], "verify", row["email"], s.verify_token_ttl)
            await queue_mail(conn, mail_templates.verify_email(s, row["email"], token))
    except asyncpg.UniqueViolationError:
        raise conflict("An account with this email exists already") from None
    return reply(convert(row, UserOut), 201)


async def login(request: Request) -> Response:
    """Throttled per client address and per (email, address), the latter reset by a success, so wrong
    passwords sent from one address never lock the owner out from another."""
    data = await body(request, LoginIn)
    svc = services(request)
    s = svc.settings
    if data.cookie:
        auth_cookie.check_csrf(request, s)
    client = client_address(request)
    window = s.login_window_seconds
    await ratelimit.hit(svc.redis, ratelimit.bucket(s.redis_prefix, "login-ip", client), s.login_limit_per_ip, window)
    email = data.email.strip().lower()
    # Counted before the check (atomic, so concurrent guesses cannot slip past the limit); a success resets it.
    attempts = ratelimit.bucket(s.redis_prefix, "login-email-ip", f"{email}\n{client}")
    await ratelimit.hit(svc.redis, attempts, s.login_limit_per_email, window)
    row = await svc.pool.fetchrow("SELECT id, password_hash FROM users WHERE lower(email) = $1", email)
    ok = await svc.passwords.verify(row["password_hash"] if row else None, data.password)
    if row is None or not ok:
        raise auth_error("Email or password is wrong")
    await svc.redis.delete(attempts)
    tokens = await sessions.open_session(svc.pool, s, row["id"], client_agent(request))
    return _in_cookie(tokens, s) if data.cookie else reply(tokens)


def _in_cookie(tokens: TokensOut, settings: Settings) -> Response:
    """The access token in the body, the refresh token only in the httpOnly cookie."""
    assert tokens.refresh_token is not None
    cookie = tokens.refresh_token
    tokens.refresh_token = None
    return auth_cookie.set_cookie(reply(tokens), settings, cookie)


async def refresh(request: Request) -> Response:
    """The refresh token from the body or, with no body, from the dashboard's cookie (CSRF-checked)."""
    data = await optional_body(request, RefreshIn)
    svc = services(request)
    if data is not None:
        tokens = await sessions.rotate_refresh(svc.pool, svc.settings, data.refresh_token)
        if tokens is None:
            raise auth_error("Refresh token is invalid, used or expired; log in again")
        return reply(tokens)
    auth_cookie.check_csrf(request, svc.settings)
    cookie = auth_cookie.refresh_token(request)
    tokens = None if cookie is None else await sessions.rotate_refresh(svc.pool, svc.settings, cookie)
    if tokens is None:
        failed = auth_error("Your session has ended; log in again")
        cleared = {"set-cookie": _cleared_cookie(svc.settings)} if cookie is not None else {}
        raise ApiError(failed.status, failed.code, failed.message, None, {**(failed.headers or {}), **cleared})
    return _in_cookie(tokens, svc.settings)


def _cleared_cookie(settings: Settings) -> str:
    return auth_cookie.clear_cookie(Response(), settings).headers["set-cookie"]


async def logout(request: Request) -> Response:
    """Ends the session of the refresh token in the body, else of the dashboard's cookie (CSRF-checked,
    and the cookie is cleared), else of the access token presented."""
    data = await optional_body(request, RefreshIn)
    svc = services(request)
    cookie = auth_cookie.refresh_token(request)
    if data is not None:
        await sessions.close_by_refresh(svc.pool, data.refresh_token)
    elif cookie is not None:
        auth_cookie.check_csrf(request, svc.settings)
        await sessions.close_by_refresh(svc.pool, cookie)
        return auth_cookie.clear_cookie(no_content(), svc.settings)
    else:
        await sessions.close(svc.pool, (await access.user(request)).session_id)
    return no_content()


async def me(request: Request) -> Response:
    who = await access.user(request)
    row = await services(request).pool.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", who.id)
    return reply(convert(row, UserOut))


ENDPOINTS = [
    Endpoint("POST", "/api/v1/auth/signup", signup, "Create a user account", SignupIn, UserOut, 201, "none",
             errors=(400, 409, 429)),
    Endpoint("POST", "/api/v1/auth/login", login, "Log in: an access token (30 min) and a refresh token",
             LoginIn, TokensOut, auth="none", errors=(400, 401, 403, 429)),
    Endpoint("POST", "/api/v1/auth/refresh", refresh, "Trade a refresh token (body, or the dashboard's cookie) "
             "for new tokens (it stops working)", RefreshIn, TokensOut, auth="none", errors=(400, 401, 403)),
    Endpoint("POST", "/api/v1/auth/logout", logout, "End a session (body: its refresh token; else the cookie's; "
             "else the bearer's)", RefreshIn, None, 204, "none", errors=(400, 401, 403)),
    Endpoint("GET", "/api/v1/me", me, "The logged-in user", None, UserOut, errors=(401, 403)),
]  # fmt: skip
