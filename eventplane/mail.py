"""The mail outbox: messages written in the transaction of the change that causes them, delivered later.

`queue_mail` inserts a row; `deliver_due` (the worker's job) sends what is due, over SMTP
(`EVENTPLANE_SMTP_URL`) or, without one, into a file mailbox (one .eml per message under
data_dir/mailbox). Each row is sent under its row lock and marked sent in the same transaction; a
process killed between sending and that commit leaves the row due, so it is sent again, with the same
`Message-ID` (made from the outbox id), which lets mail clients recognise the copy. A failure retries
with doubling backoff; no message is dropped. A message that can never go (an address the email
package cannot write, a recipient the server refuses for good) is parked: kept, with its reason, and never due again.
"""

from __future__ import annotations

import logging
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from eventplane.settings import Settings

log = logging.getLogger("eventplane.mail")
MAX_BACKOFF = 900.0
BATCH = 20
SMTP_TIMEOUT = 30.0  # seconds for each SMTP step


Conn = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool


@dataclass(frozen=True)
class Mail:
    recipient: str
    subject: str
    text: str
    html: str


async def queue_mail(conn: Conn, mail: Mail) -> uuid.UUID:
    """Queue `mail`; call it on the connection of the transaction whose change causes it."""
    outbox_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO mail_outbox (recipient, subject, text_body, html_body) VALUES ($1, $2, $3, $4) RETURNING id",
        mail.recipient,
        mail.subject,
        mail.text,
        mail.html,
    )
    return outbox_id


def message_id(outbox_id: uuid.UUID) -> str:
    return f"<{outbox_id}@eventplane>"


def build(settings: Settings, row: Any) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row["recipient"]
    msg["Subject"] = row["subject"]
    msg["Date"] = format_datetime(row["created_at"])
    msg["Message-ID"] = message_id(row["id"])
    msg.set_content(row["text_body"])
    msg.add_alternative(row["html_body"], subtype="html")
    return msg


async def send(settings: Settings, msg: EmailMessage) -> None:
    """Over SMTP when a URL is set (smtp:// with STARTTLS when offered, smtps:// implicit TLS), else to a file."""
    if settings.smtp_url is None:
        _to_mailbox(settings.data_dir / "mailbox", msg)
        return
    url = urlsplit(str(settings.smtp_url))
    implicit = url.scheme == "smtps"
    await aiosmtplib.send(
        msg,
        hostname=url.hostname or "127.0.0.1",
        port=url.port or (465 if implicit else 587),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=implicit,
        start_tls=None if not implicit else False,  # None: STARTTLS when the server offers it
        tls_context=ssl.create_default_context(),
        timeout=SMTP_TIMEOUT,
    )


def _to_mailbox(directory: Path, msg: EmailMessage) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = str(msg["Message-ID"]).strip("<>").split("@")[0]
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(bytes(msg))
    # Named by time of writing then id, so a listing sorts oldest first; a resend overwrites nothing.
    tmp.rename(directory / f"{time.time_ns():020d}-{name}.eml")


_DUE = """
SELECT id, recipient, subject, text_body, html_body, created_at, attempts FROM mail_outbox
WHERE sent_at IS NULL AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 1
FOR UPDATE SKIP LOCKED
"""


async def deliver_due(pool: asyncpg.Pool, settings: Settings, limit: int = BATCH) -> int:
    """Send up to `limit` due messages; returns how many were delivered."""
    delivered = 0
    for _ in range(limit):
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_DUE)
            if row is None:
                break
            if await _deliver_one(conn, settings, row):
                delivered += 1
    return delivered


async def _deliver_one(conn: Conn, settings: Settings, row: Any) -> bool:
    try:
        message = build(settings, row)
    except Exception as exc:  # the email package raises many kinds on an address it cannot write
        await _park(conn, row, exc)
        return False
    try:
        await send(settings, message)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
        if _permanent(exc):  # refused for good (no such mailbox, policy): retrying would never end
            await _park(conn, row, exc)
        else:
            await _retry(conn, settings, row, exc)
        return False
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        await _retry(conn, settings, row, exc)
        return False
    # The bodies carry single-use links: once delivered they leave the database.
    await conn.execute("UPDATE mail_outbox SET attempts = attempts + 1, sent_at = now(), text_body = '', "
                       "html_body = '' WHERE id = $1", row["id"])  # fmt: skip
    return True


def _permanent(exc: aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused) -> bool:
    # Only the recipient refused for good. Any other 5xx (auth required, relay denied) is the server's
    # configuration, which the operator fixes: those messages wait, with backoff, rather than being parked.
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code >= 500 for r in exc.recipients)
    return False


async def _retry(conn: Conn, settings: Settings, row: Any, exc: BaseException) -> None:
    delay = min(MAX_BACKOFF, settings.mail_retry_base * 2 ** min(row["attempts"], 20))
    log.warning("mail %s not delivered (%s); retry %d in %.1f s", row["id"], type(exc).__name__,
                row["attempts"] + 1, delay)  # fmt: skip
    await conn.execute(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, "
        "next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
        row["id"],
        f"{type(exc).__name__}: {exc}"[:500],
        delay,
    )


async def _park(conn: Conn, row: Any, exc: BaseException) -> None:
    """A message that can never be delivered stays in the outbox (sent_at null, due never), with its reason,
    so that it cannot hold up the others."""
    log.error("mail %s cannot be delivered (%s); parked", row["id"], type(exc).__name__)
    await conn.execute(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = 'infinity' WHERE id = $1",
        row["id"],
        f"parked: {type(exc).__name__}: {exc}"[:500],
    )


def header(message: EmailMessage, name: str) -> str:
    """A header's text as stored, never parsed: parsing refuses some addresses the api accepts at sign-up."""
    return next((str(v) for k, v in message.raw_items() if k.lower() == name.lower()), "")


def latest(settings: Settings, count: int) -> list[Path]:
    """The newest `count` messages of the file mailbox, newest first."""
    directory = settings.data_dir / "mailbox"
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.eml"), reverse=True)[:count]
