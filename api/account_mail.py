"""Flows that go through the user's mailbox: verify the address, forgot/reset password, change the
password (current one needed), change the address (verified at the new one).

Every mail is queued in the transaction of the change (eventplane/mail.py); links carry single-use
tokens (api/email_tokens.py). Reset and change of the password end every other session of the user.
"""

from __future__ import annotations

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from api import access, email_tokens, ratelimit, sessions
from api.accounts import USER_COLUMNS, client_address
from api.errors import conflict
from api.rest import body, convert, no_content, reply
from api.routing import Endpoint
from api.state import services
from api.wire import AcceptedMailOut, EmailChangeIn, EmailTokenIn, ForgotIn, PasswordChangeIn, ResetIn, UserOut
from eventplane import mail_templates
from eventplane.errors import ApiError
from eventplane.mail import queue_mail


def bad_link(what: str) -> ApiError:
    # 404 as for an invitation's unknown token: no such (usable) link.
    return ApiError(404, "INVALID_TOKEN", f"This {what} link is invalid, used or expired; ask for a new one")


async def _throttle(request: Request, kind: str, value: str) -> None:
    """Mails per address or account: account_mail_limit per account_mail_window."""
    s = services(request).settings
    await ratelimit.hit(services(request).redis, ratelimit.bucket(s.redis_prefix, kind, value),
                        s.account_mail_limit, s.account_mail_window)  # fmt: skip


async def _throttle_client(request: Request, kind: str) -> None:
    """Token checks per client address, as generous as logins (one office behind one NAT); the tokens'
    256 random bits, not this limit, are what makes guessing hopeless."""
    s = services(request).settings
    await ratelimit.hit(services(request).redis, ratelimit.bucket(s.redis_prefix, kind, client_address(request)),
                        s.login_limit_per_ip, s.login_window_seconds)  # fmt: skip


async def verify(request: Request) -> Response:
    data = await body(request, EmailTokenIn)
    await _throttle_client(request, "verify-ip")
    async with services(request).pool.acquire() as conn, conn.transaction():
        used = await email_tokens.consume(conn, "verify", data.token)
        # Only while the account still has the address the link was sent to.
        row = used and await conn.fetchrow(
            f"UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) "
            f"WHERE id = $1 AND lower(email) = lower($2) RETURNING {USER_COLUMNS}",
            used["user_id"],
            used["email"],
        )
    if not row:
        raise bad_link("verification")
    return reply(convert(row, UserOut))


async def resend_verification(request: Request) -> Response:
    who = await access.user(request)
    if who.email_verified:
        raise conflict("Your email address is verified already")
    await _throttle(request, "verify-mail", who.email.lower())
    svc = services(request)
    async with svc.pool.acquire() as conn, conn.transaction():
        token = await email_tokens.issue(conn, who.id, "verify", who.email, svc.settings.verify_token_ttl)
        await queue_mail(conn, mail_templates.verify_email(svc.settings, who.email, token))
    return reply(AcceptedMailOut(), 202)


async def forgot(request: Request) -> Response:
    """The same 202 whether the address has an account or not, and no faster for one than the other
    beyond one insert: nothing here tells who has an account."""
    data = await body(request, ForgotIn)
    email = data.email.strip().lower()
    await _throttle_client(request, "forgot-ip")
    await _throttle(request, "forgot-mail", email)
    svc = services(request)
    async with svc.pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow("SELECT id, email FROM users WHERE lower(email) = $1", email)
        if user is not None:
            token = await email_tokens.issue(conn, user["id"], "reset", user["email"], svc.settings.reset_token_ttl)
            await queue_mail(conn, mail_templates.reset_password(svc.settings, user["email"], token))
    return reply(AcceptedMailOut(), 202)


async def reset(request: Request) -> Response:
    data = await body(request, ResetIn)
    await _throttle_client(request, "reset-ip")
    svc = services(request)
    password_hash = await svc.passwords.hash(data.password)
    async with svc.pool.acquire() as conn, conn.transaction():
        used = await email_tokens.consume(conn, "reset", data.token)
        # The link proves the mailbox too: the address is verified by it.
        changed = used and await conn.fetchval(
            "UPDATE users SET password_hash = $2, email_verified_at = coalesce(email_verified_at, now()) "
            "WHERE id = $1 AND lower(email) = lower($3) RETURNING id",
            used["user_id"],
            password_hash,
            used["email"],
        )
        if not changed:
            raise bad_link("password reset")
        await sessions.close_others(conn, used["user_id"], None)
    return no_content()


async def change_password(request: Request) -> Response:
    who = await access.user(request)
    data = await body(request, PasswordChangeIn)
    await _check_password(request, who, data.current_password)
    svc = services(request)
    password_hash = await svc.passwords.hash(data.new_password)
    async with svc.pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", who.id, password_hash)
        await sessions.close_others(conn, who.id, who.session_id)
    return no_content()


async def _check_password(request: Request, who: access.User, password: str) -> None:
    svc = services(request)
    s = svc.settings
    attempts = ratelimit.bucket(s.redis_prefix, "password-check", str(who.id))
    await ratelimit.hit(svc.redis, attempts, s.login_limit_per_email, s.login_window_seconds)
    stored = await svc.pool.fetchval("SELECT password_hash FROM users WHERE id = $1", who.id)
    if not await svc.passwords.verify(stored, password):
        # Not 401: the session is fine, and a client would take 401 for "log in again".
        raise ApiError(403, "WRONG_PASSWORD", "Your current password is wrong; if you forgot it, log out and use "
                       "POST /api/v1/auth/forgot-password")  # fmt: skip
    await svc.redis.delete(attempts)


async def change_email(request: Request) -> Response:
    """Mails a confirmation link to the new address; the account keeps its address until it is opened."""
    who = await access.user(request)
    data = await body(request, EmailChangeIn)
    await _check_password(request, who, data.password)
    await _throttle(request, "email-change", str(who.id))
    svc = services(request)
    new = data.email.strip()
    async with svc.pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT true FROM users WHERE lower(email) = lower($1)", new):
            raise conflict("An account with this email exists already")
        token = await email_tokens.issue(conn, who.id, "email_change", new, svc.settings.verify_token_ttl)
        await queue_mail(conn, mail_templates.change_email(svc.settings, new, token))
    return reply(AcceptedMailOut(), 202)


async def confirm_email(request: Request) -> Response:
    data = await body(request, EmailTokenIn)
    await _throttle_client(request, "verify-ip")
    async with services(request).pool.acquire() as conn, conn.transaction():
        used = await email_tokens.consume(conn, "email_change", data.token)
        if used is None:
            raise bad_link("email change")
        try:
            row = await conn.fetchrow(
                f"UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}",
                used["user_id"],
                used["email"],
            )
        except asyncpg.UniqueViolationError:  # someone took the address since the link was sent
            raise conflict("An account with this email exists already") from None
    return reply(convert(row, UserOut))


_T = (400, 404, 429)
ENDPOINTS = [
    Endpoint("POST", "/api/v1/auth/verify-email", verify, "Verify an email address with the token its mail carried",
             EmailTokenIn, UserOut, auth="none", errors=_T),
    Endpoint("POST", "/api/v1/me/verify-email/resend", resend_verification, "Mail a new verification link", None,
             AcceptedMailOut, 202, errors=(401, 403, 409, 429)),
    Endpoint("POST", "/api/v1/auth/forgot-password", forgot, "Mail a password reset link (same answer for any "
             "address)", ForgotIn, AcceptedMailOut, 202, "none", errors=_T),
    Endpoint("POST", "/api/v1/auth/reset-password", reset, "Set a new password with a reset token; ends every "
             "session", ResetIn, None, 204, "none", errors=_T),
    Endpoint("POST", "/api/v1/me/password", change_password, "Change the password (current one needed); ends "
             "every other session", PasswordChangeIn, None, 204, errors=(400, 401, 403, 429)),
    Endpoint("POST", "/api/v1/me/email", change_email, "Change the email address: mails a link to the new one",
             EmailChangeIn, AcceptedMailOut, 202, errors=(400, 401, 403, 409, 429)),
    Endpoint("POST", "/api/v1/auth/confirm-email", confirm_email, "Confirm a new email address with its token",
             EmailTokenIn, UserOut, auth="none", errors=(400, 404, 409, 429)),
]  # fmt: skip
