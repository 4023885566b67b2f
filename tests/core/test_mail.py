"""The outbox (eventplane/mail.py) against a real SMTP server (aiosmtpd) and Postgres: nothing is lost while
SMTP is down (retried with backoff, delivered once it is back), a message sent again after the sender died
between sending and recording carries the same Message-ID, the file mailbox and `eventplane mail`."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from eventplane import cli, mail
from eventplane.settings import Secret, Settings
from tests.api.mailbox import Inbox, SmtpServer, own_outbox


@pytest_asyncio.fixture
async def outbox(server_urls: tuple[str, str], settings: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    async with own_outbox(server_urls[0], settings) as made:
        yield made


def a_mail(tag: str) -> mail.Mail:
    return mail.Mail(f"{tag}-{uuid.uuid4().hex[:8]}@example.test", f"Hello {tag}", f"text of {tag}",
                     f"<p>html of {tag}</p>")  # fmt: skip


async def outbox_row(pool: asyncpg.Pool, outbox_id: uuid.UUID) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT attempts, sent_at, last_error, text_body FROM mail_outbox WHERE id = $1",
                              outbox_id)  # fmt: skip
    assert row is not None
    return row


async def deliver_until(pool: asyncpg.Pool, settings: Settings, done: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await done():
        assert time.monotonic() < deadline, "condition not reached"
        await mail.deliver_due(pool, settings)
        await asyncio.sleep(0.01)  # pacing between polls, not synchronisation: the condition is polled


async def test_smtp_down_retries_with_backoff_then_delivers_once(outbox: tuple[Settings, asyncpg.Pool]) -> None:
    settings, pool = outbox
    smtp = SmtpServer()  # not started: connections are refused
    s = replace(settings, smtp_url=Secret(smtp.url), mail_retry_base=0.05)
    message = a_mail("down")
    outbox_id = await mail.queue_mail(pool, message)

    async def tried_three_times() -> bool:
        attempts: int = (await outbox_row(pool, outbox_id))["attempts"]
        return attempts >= 3

    await deliver_until(pool, s, tried_three_times)
    row = await outbox_row(pool, outbox_id)
    assert row["sent_at"] is None and "SMTPConnect" in row["last_error"] and row["text_body"] == message.text
    due = await pool.fetchval("SELECT next_attempt_at - now() FROM mail_outbox WHERE id = $1", outbox_id)
    assert due.total_seconds() > 0  # backing off, not hammering

    smtp.start()
    try:

        async def delivered() -> bool:
            return bool(smtp.inbox.to(message.recipient))

        await deliver_until(pool, s, delivered)
        [got] = smtp.inbox.to(message.recipient)
        assert got["Message-ID"] == f"<{outbox_id}@eventplane>" and got["Subject"] == message.subject
        row = await outbox_row(pool, outbox_id)
        assert row["sent_at"] is not None and row["text_body"] == ""  # the link leaves the database once sent
        await mail.deliver_due(pool, s)
        assert len(smtp.inbox.to(message.recipient)) == 1
    finally:
        smtp.stop()


class StallingInbox(Inbox):
    """Receives a message, then holds its answer until released: the sender dies meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.received = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.received.set()
        await asyncio.to_thread(self.release.wait, 10)  # the server's own loop runs in another thread
        return answer


async def test_a_sender_killed_after_sending_resends_with_the_same_message_id(
    outbox: tuple[Settings, asyncpg.Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, pool = outbox
    # aiosmtplib finishes a cancelled send only at its timeout; a short one keeps this test short.
    monkeypatch.setattr(mail, "SMTP_TIMEOUT", 1.0)
    smtp = SmtpServer()
    smtp.inbox = stalling = StallingInbox()
    smtp.start()
    try:
        s = replace(settings, smtp_url=Secret(smtp.url), mail_retry_base=0.05)
        message = a_mail("killed")
        outbox_id = await mail.queue_mail(pool, message)
        sender = asyncio.create_task(mail.deliver_due(pool, s))
        deadline = time.monotonic() + 10
        while not stalling.received.is_set():
            assert time.monotonic() < deadline and not sender.done()
            await asyncio.sleep(0.01)
        sender.cancel()  # killed between SMTP accepting the message and the outbox recording it
        with pytest.raises(asyncio.CancelledError):
            await sender
        stalling.release.set()
        assert (await outbox_row(pool, outbox_id))["sent_at"] is None  # its transaction never committed

        async def delivered_twice() -> bool:
            return len(stalling.to(message.recipient)) == 2

        await deliver_until(pool, s, delivered_twice)
        first, second = stalling.to(message.recipient)
        assert first["Message-ID"] == second["Message-ID"] == f"<{outbox_id}@eventplane>"
        assert (await outbox_row(pool, outbox_id))["sent_at"] is not None
    finally:
        smtp.stop()


async def test_without_smtp_mail_goes_to_the_file_mailbox_and_eventplane_mail_prints_it(
    outbox: tuple[Settings, asyncpg.Pool], tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    settings, pool = outbox
    s = replace(settings, data_dir=tmp_path)
    message = a_mail("file")
    outbox_id = await mail.queue_mail(pool, message)

    async def in_mailbox() -> bool:
        return bool(mail.latest(s, 1))

    await deliver_until(pool, s, in_mailbox)
    monkeypatch.setenv("EVENTPLANE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EVENTPLANE_SMTP_URL", raising=False)
    assert cli.main(["mail", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert f"Message-ID: <{outbox_id}@eventplane>" in out and f"To: {message.recipient}" in out
    assert message.text in out


class RefusingInbox(Inbox):
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("nobody-"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_mail_that_can_never_go_is_parked_and_holds_up_nothing(outbox: tuple[Settings, asyncpg.Pool]) -> None:
    settings, pool = outbox
    smtp = SmtpServer()
    smtp.inbox = RefusingInbox()
    smtp.start()
    try:
        s = replace(settings, smtp_url=Secret(smtp.url), mail_retry_base=0.05)
        unwritable = await mail.queue_mail(pool, replace(a_mail("x"), recipient="a@["))  # the email package fails
        refused = await mail.queue_mail(pool, replace(a_mail("x"), recipient=f"nobody-{uuid.uuid4().hex[:6]}@x.test"))
        good = a_mail("after")
        await mail.queue_mail(pool, good)

        async def delivered() -> bool:
            return bool(smtp.inbox.to(good.recipient))

        await deliver_until(pool, s, delivered)
        for outbox_id in (unwritable, refused):
            row = await pool.fetchrow("SELECT sent_at, last_error, next_attempt_at = 'infinity' AS parked, attempts "
                                      "FROM mail_outbox WHERE id = $1", outbox_id)  # fmt: skip
            assert row is not None
            assert row["sent_at"] is None and row["parked"] and row["attempts"] == 1, dict(row)
            assert row["last_error"].startswith("parked: ")
    finally:
        smtp.stop()
