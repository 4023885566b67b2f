"""The worker's mail job, run by a real arq worker in burst mode, delivers the outbox to a real SMTP server."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
from arq import cron

from eventplane import mail
from eventplane.settings import Secret, Settings
from tests.api.mailbox import SmtpServer, own_outbox
from workers import mail as mail_job
from workers.main import build_worker


async def test_a_worker_delivers_queued_mail(server_urls: tuple[str, str], fresh: Settings) -> None:
    smtp = SmtpServer()
    smtp.start()
    try:
        async with own_outbox(server_urls[0], fresh) as (own, pool):
            await _delivered_by_a_worker(replace(own, smtp_url=Secret(smtp.url)), pool, smtp)
    finally:
        smtp.stop()


async def _delivered_by_a_worker(s: Settings, pool: asyncpg.Pool, smtp: SmtpServer) -> None:
    to = f"worker-{uuid.uuid4().hex[:8]}@example.test"
    outbox_id = await mail.queue_mail(pool, mail.Mail(to, "From the worker", "text", "<p>html</p>"))
    # Only the mail job, run once at start-up (burst mode), exactly as the worker's cron schedules it.
    job = cron(mail_job.deliver_mail, second=mail_job.EVERY_SECONDS, run_at_startup=True, unique=True)
    worker = build_worker(s, burst=True, poll_delay=0, handle_signals=False, cron_jobs=[job])
    try:
        await worker.async_run()
    finally:
        await worker.close()
    [got] = smtp.inbox.to(to)
    assert got["Message-ID"] == f"<{outbox_id}@eventplane>"
    assert await pool.fetchval("SELECT sent_at IS NOT NULL FROM mail_outbox WHERE id = $1", outbox_id)


def test_the_worker_schedules_the_mail_job(settings: Settings) -> None:
    names = [c.name for c in build_worker(settings, burst=True).cron_jobs]
    assert "cron:deliver_mail" in names
