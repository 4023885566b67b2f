"""Following flows through the mail: an in-process SMTP server (aiosmtpd) on a free port, the local file
mailbox, delivery by the worker's own function, and the link (token) read back out of a message."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiosmtpd.controller import Controller
from starlette.applications import Starlette

from api.state import Services
from eventplane import db, mail
from eventplane.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Inbox:
    """aiosmtpd handler: every message received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if mail.header(m, "To").lower() == address.lower()]


class SmtpServer:
    """A real SMTP server on 127.0.0.1:`port`, which tests stop and start again on the same port."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        assert self.controller is not None
        self.controller.stop()
        self.controller = None


def services_of(app: Starlette) -> Services:
    svc: Services = app.state.services
    return svc


async def deliver(app: Starlette) -> int:
    """What the worker's mail job does, on the app's pool and settings."""
    svc = services_of(app)
    return await mail.deliver_due(svc.pool, svc.settings)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


def token_in(message: EmailMessage, path: str) -> str:
    """The token of the link to `path` in the message's text (and the same link is in its HTML)."""
    match = re.search(rf"https?://\S+/{re.escape(path)}\?token=(\S+)", text_of(message))
    assert match, text_of(message)
    html = message.get_body(("html",))
    assert html is not None and match.group(0) in html.get_content()
    return match.group(1)


async def wait_for_mail(app: Starlette, inbox: Inbox, address: str, count: int = 1) -> list[EmailMessage]:
    """Deliver until `address` has `count` messages (deadline 10 s)."""
    deadline = time.monotonic() + 10
    while len(inbox.to(address)) < count:
        assert time.monotonic() < deadline, f"no mail for {address}"
        await deliver(app)
    return inbox.to(address)


def mailbox_messages(settings: Settings, address: str) -> list[EmailMessage]:
    """The file mailbox's messages to `address`, oldest first (no EVENTPLANE_SMTP_URL)."""
    found = []
    for path in reversed(mail.latest(settings, 10_000)):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if mail.header(message, "To").lower() == address.lower():
            found.append(message)
    return found


async def deliver_all(app: Starlette) -> None:
    while await deliver(app):
        pass


async def verify_by_mail(api: httpx.AsyncClient, app: Starlette, address: str) -> None:
    """Open the latest verification link mailed to `address` (file mailbox)."""
    await deliver_all(app)
    [*_, message] = [m for m in mailbox_messages(services_of(app).settings, address) if "Verify" in m["Subject"]]
    r = await api.post("/api/v1/auth/verify-email", json={"token": token_in(message, "verify-email")})
    assert r.status_code == 200 and r.json()["email_verified"] is True, r.text


@contextlib.asynccontextmanager
async def own_outbox(server_db: str, settings: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    """Settings and a pool on a database of the caller's own: an outbox no other test fills (a suite's
    sign-ups leave hundreds of messages, which delivery tests would otherwise wait behind)."""
    name = f"eventplane_mail_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_db)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = urlunsplit(urlsplit(server_db)._replace(path=f"/{name}"))
        await db.migrate(dsn)
        pool = await db.create_pool(dsn, min_size=1, max_size=3)
        try:
            yield replace(settings, database_url=dsn), pool
        finally:
            await db.close_pool(pool)
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
