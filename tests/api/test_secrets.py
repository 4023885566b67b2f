"""Secrets never appear in logs, error bodies or list responses.

One walk through the real server (uvicorn, access log on) with every logger at DEBUG: sign up, log in,
refresh (and replay the replaced refresh token), invite and accept (the token travels in the URL path),
create, use and rotate a key, fail in a few ways, verify the address, forget and reset the password, change
it and the address (the tokens read from the mailed links), list sessions, log out. Then every captured log
line, every error body and every list response is searched for each secret: passwords, access and refresh
tokens, invitation, verification, reset and email-change tokens, plaintext keys, and the hashes stored for
keys and tokens; delivered mail leaves no token in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from api.sessions import token_hash
from eventplane import db, mail
from eventplane.keyformat import hash_key
from eventplane.settings import Settings
from tests.api.conftest import unique_email, unique_slug
from tests.api.mailbox import mailbox_messages, token_in

# The test's own HTTP client logs the URLs it calls (an invitation token among them); it is not the service.
CLIENT_LOGGERS = ("httpx", "httpcore")


@contextlib.contextmanager
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """caplog receives every record at DEBUG, also from loggers that do not propagate (uvicorn's, once
    another fixture has run uvicorn with its default logging config)."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    hooked = [logger for logger in loggers if not logger.propagate]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    for logger in hooked:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            yield
    finally:
        for logger in hooked:
            logger.removeHandler(caplog.handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


class Walk:
    """Collects the secrets it is shown and the responses that must not show them."""

    def __init__(self, client: httpx.Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.secrets: dict[str, str] = {}
        self.checked: list[httpx.Response] = []  # error bodies and list responses

    def secret(self, label: str, value: str) -> str:
        assert value, label
        self.secrets[label] = value
        return value

    def call(self, method: str, url: str, expect: int, **kwargs: Any) -> Any:
        r = self.client.request(method, url, **kwargs)
        assert r.status_code == expect, (method, url, r.status_code, r.text)
        if r.status_code >= 400 or (method == "GET" and "items" in r.text):
            self.checked.append(r)
        return r.json() if r.content else None

    def mailed_token(self, label: str, to: str, subject: str, path: str) -> str:
        """Deliver the outbox (what the worker does) and read the token of the latest such mail's link."""
        asyncio.run(_deliver_all(self.settings))
        [*_, message] = [m for m in mailbox_messages(self.settings, to) if subject in mail.header(m, "Subject")]
        token = self.secret(label, token_in(message, path))
        self.secret(f"{label} hash", token_hash(token))
        self.open_page(f"/{path}?token={token}")  # the link opened: the dashboard's page, in the access log
        return token

    def open_page(self, url: str) -> None:
        r = self.client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (url, r.status_code)

    def cookie_session(self, email: str, password: str) -> None:
        """The dashboard's way: the refresh token only in the cookie, refreshed and ended by cookie."""
        browser = {"x-eventplane-csrf": "1", "origin": str(self.client.base_url).rstrip("/")}
        body = {"email": email, "password": password, "cookie": True}
        tokens = self.call("POST", "/api/v1/auth/login", 200, json=body, headers=browser)
        self.secret(f"cookie session's access token of {email}", tokens["access_token"])
        cookie = self.secret(f"cookie refresh token of {email}", self.client.cookies["ep_refresh"])
        self.secret(f"cookie refresh token hash of {email}", token_hash(cookie))
        self.call("POST", "/api/v1/auth/refresh", 403, headers={"origin": browser["origin"]})  # no CSRF header
        self.secret(f"refreshed cookie of {email}", self.call_cookie("/api/v1/auth/refresh", 200, browser))
        self.call_cookie("/api/v1/auth/logout", 204, browser)

    def call_cookie(self, url: str, expect: int, headers: dict[str, str]) -> str:
        self.call("POST", url, expect, headers=headers)
        return self.client.cookies.get("ep_refresh") or "cleared"

    def login(self, email: str, password: str) -> dict[str, str]:
        tokens: dict[str, str] = self.call("POST", "/api/v1/auth/login", 200,
                                           json={"email": email, "password": password})  # fmt: skip
        self.secret(f"access token of {email}", tokens["access_token"])
        self.secret(f"refresh token of {email}", tokens["refresh_token"])
        self.secret(f"refresh token hash of {email}", token_hash(tokens["refresh_token"]))
        return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _deliver_all(settings: Settings) -> None:
    pool = await db.create_pool(settings.dsn, min_size=1, max_size=1)
    due = "SELECT EXISTS (SELECT 1 FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= now())"
    try:
        # Until nothing is due: a batch may deliver none (the suite's odd addresses are parked) with more behind.
        await mail.deliver_due(pool, settings)
        while await pool.fetchval(due):
            await mail.deliver_due(pool, settings)
    finally:
        await db.close_pool(pool)


def walk_the_mail_flows(w: Walk, email: str, password: str) -> None:
    auth = w.login(email, password)
    verify = w.mailed_token("verification token", email, "Verify", "verify-email")
    w.call("POST", "/api/v1/auth/verify-email", 200, json={"token": verify})
    w.call("POST", "/api/v1/auth/verify-email", 404, json={"token": verify})
    w.call("POST", "/api/v1/auth/forgot-password", 202, json={"email": email})
    reset = w.mailed_token("reset token", email, "Reset", "reset-password")
    new_pw = w.secret("reset password", "a password chosen after the reset")
    w.call("POST", "/api/v1/auth/reset-password", 204, json={"token": reset, "password": new_pw})
    w.call("POST", "/api/v1/auth/reset-password", 404, json={"token": reset, "password": new_pw})
    w.call("GET", "/api/v1/me", 401, headers=auth)
    auth = w.login(email, new_pw)
    changed_pw = w.secret("changed password", "a password changed while logged in")
    w.call("POST", "/api/v1/me/password", 403, json={"current_password": password, "new_password": changed_pw},
           headers=auth)  # fmt: skip
    w.call("POST", "/api/v1/me/password", 204, json={"current_password": new_pw, "new_password": changed_pw},
           headers=auth)  # fmt: skip
    moved = unique_email("moved")
    w.call("POST", "/api/v1/me/email", 202, json={"email": moved, "password": changed_pw}, headers=auth)
    change = w.mailed_token("email change token", moved, "new email", "confirm-email")
    w.call("POST", "/api/v1/auth/confirm-email", 200, json={"token": change})
    w.call("POST", "/api/v1/auth/confirm-email", 404, json={"token": change})
    w.call("GET", "/api/v1/me/sessions", 200, headers=auth)
    w.checked.append(w.client.get("/api/v1/me/sessions", headers=auth))


def walk_through_the_api(w: Walk) -> None:
    owner, guest = unique_email("owner"), unique_email("guest")
    owner_pw = w.secret("owner's password", "owner's very secret passphrase")
    guest_pw = w.secret("guest's password", "guest's very secret passphrase")
    w.call("POST", "/api/v1/auth/signup", 201, json={"email": owner, "password": owner_pw})
    w.call("POST", "/api/v1/auth/signup", 201, json={"email": guest, "password": guest_pw})
    w.call("POST", "/api/v1/auth/signup", 409, json={"email": owner, "password": owner_pw})
    w.call("POST", "/api/v1/auth/signup", 400, json={"email": unique_email(), "password": "short!"})
    w.call("POST", "/api/v1/auth/login", 401, json={"email": owner, "password": w.secret("wrong", "a wrong guess!")})
    w.login(owner, owner_pw)
    w.cookie_session(owner, owner_pw)
    first_refresh = w.secrets[f"refresh token of {owner}"]
    tokens = w.call("POST", "/api/v1/auth/refresh", 200, json={"refresh_token": first_refresh})
    w.secret("refreshed access token", tokens["access_token"])
    w.secret("refreshed refresh token", tokens["refresh_token"])
    w.call("POST", "/api/v1/auth/refresh", 401, json={"refresh_token": first_refresh})  # replayed: session ends
    auth = w.login(owner, owner_pw)

    slug = unique_slug()
    ws = w.call("POST", "/api/v1/workspaces", 201, json={"name": slug, "slug": slug}, headers=auth)["id"]
    invite = w.call("POST", f"/api/v1/workspaces/{ws}/invites", 201, json={"email": guest, "role": "DEVELOPER"},
                    headers=auth)  # fmt: skip
    w.secret("invitation token", invite["token"])
    w.secret("invitation token hash", token_hash(invite["token"]))
    w.open_page(f"/invitations/accept?token={invite['token']}")
    other = w.call("POST", f"/api/v1/workspaces/{ws}/members/invite", 201, json={"email": unique_email()},
                   headers=auth)  # fmt: skip
    w.secret("other invitation token", other["token"])
    resent = w.call("POST", f"/api/v1/workspaces/{ws}/invites/{other['id']}/resend", 200, headers=auth)
    w.secret("resent invitation token", resent["token"])
    other["token"] = resent["token"]
    w.call("GET", f"/api/v1/workspaces/{ws}/invites", 200, headers=auth)
    guest_auth = w.login(guest, guest_pw)
    w.call("GET", "/api/v1/workspaces/invitations/pending", 200, headers=guest_auth)
    w.call("POST", f"/api/v1/workspaces/invitations/{other['token']}/accept", 403, headers=guest_auth)
    w.call("POST", f"/api/v1/workspaces/invites/{invite['token']}/accept", 200, headers=guest_auth)
    w.call("POST", f"/api/v1/workspaces/invites/{invite['token']}/accept", 404, headers=guest_auth)
    # Every shape of path that carries a token, routed or not, in any case.
    for path in (
        f"/api/v1/workspaces/invites/{invite['token']}",
        f"/api/v1/workspaces/Invites/{invite['token']}/Accept",
        f"/api/v1/WORKSPACES/INVITATIONS/{other['token']}/ACCEPT",
        f"/api/v1/invite/{other['token']}",
        f"/api/v1/workspaces/invites/accept/{other['token']}",
        f"/api/v1/nope?token={other['token']}",
    ):
        w.call("GET", path, 404, headers=guest_auth)

    keys = f"/api/v1/workspaces/{ws}/api-keys"
    created = w.call("POST", keys, 201, json={"name": "backend", "scopes": ["write"]}, headers=auth)
    w.secret("plaintext key", created["key"])
    w.secret("key hash", hash_key(created["key"]))
    w.call("GET", "/api/v1/workspaces/current", 200, headers={"X-API-Key": created["key"]})
    w.call("GET", "/api/v1/workspaces/current", 200, headers={"Authorization": f"Bearer {created['key']}"})
    rotated = w.call("POST", f"{keys}/{created['id']}/rotate", 200, json={"grace_seconds": 0}, headers=auth)
    w.secret("rotated plaintext key", rotated["key"])
    w.secret("rotated key hash", hash_key(rotated["key"]))
    w.call("GET", "/api/v1/workspaces/current", 401, headers={"X-API-Key": created["key"]})
    legacy = w.call("POST", "/api/v1/api-keys", 201, json={"name": "old", "scopes": ["read"], "workspace_id": ws},
                    headers=auth)  # fmt: skip
    w.secret("legacy plaintext key", legacy["key"])
    w.secret("legacy key hash", hash_key(legacy["key"]))
    w.call("GET", keys, 200, headers=auth)
    w.call("GET", f"/api/v1/api-keys?workspace_id={ws}", 200, headers=auth)
    w.call("GET", f"/api/v1/workspaces/{ws}/members", 200, headers=auth)
    w.call("GET", "/api/v1/workspaces", 200, headers=auth)
    w.call("POST", "/api/v1/auth/logout", 204, json={"refresh_token": w.secrets[f"refresh token of {owner}"]})
    w.call("GET", "/api/v1/me", 401, headers=auth)
    walk_the_mail_flows(w, guest, guest_pw)


def test_secrets_stay_out_of_logs_errors_and_lists(
    live_api: str, api_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with every_logger_at_debug(caplog), httpx.Client(base_url=live_api) as client:
        walk = Walk(client, api_settings)
        walk_through_the_api(walk)
    records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    text = caplog.text
    # The capture did see the server: uvicorn's access log, with the accept URL redacted.
    access = [r.getMessage() for r in records if r.name == "uvicorn.access"]
    assert any("/api/v1/workspaces/invites/***/accept" in line for line in access), access[:5]
    assert len(walk.checked) >= 10
    for label, value in walk.secrets.items():
        for record in records:
            assert value not in record.getMessage(), f"{label} logged by {record.name}"
        # (The test's own client logs what it sends and receives, headers too: a cookie is a header.)
        server_lines = [line for line in text.splitlines() if not any(c in line for c in CLIENT_LOGGERS)]
        assert all(value not in line for line in server_lines), f"{label} in a log"
        for r in walk.checked:
            assert value not in r.text, f"{label} in the answer to {r.request.method} {r.request.url.path}"


def test_delivered_mail_leaves_no_link_in_the_database(live_api: str, api_settings: Settings) -> None:
    with httpx.Client(base_url=live_api) as client:
        walk = Walk(client, api_settings)
        email = unique_email("outbox")
        walk.call("POST", "/api/v1/auth/signup", 201, json={"email": email, "password": "a secret passphrase"})
        token = walk.mailed_token("verification token", email, "Verify", "verify-email")

    async def bodies() -> list[str]:
        c = await asyncpg.connect(api_settings.dsn)
        try:
            rows = await c.fetch("SELECT text_body || html_body AS b FROM mail_outbox WHERE recipient = $1", email)
            return [r["b"] for r in rows]
        finally:
            await c.close()

    assert [token in b for b in asyncio.run(bodies())] == [False]
