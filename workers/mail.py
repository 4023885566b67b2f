"""The worker's mail job: every few seconds, deliver what the outbox holds that is due (eventplane/mail.py)."""

from __future__ import annotations

import logging
from typing import Any

from eventplane import mail
from eventplane.errors import TRANSIENT_ERRORS
from eventplane.settings import Settings
from workers.state import WorkerState

log = logging.getLogger("eventplane.workers")
EVERY_SECONDS = set(range(0, 60, 2))


async def deliver_mail(ctx: dict[str, Any]) -> int:
    state: WorkerState = ctx["state"]
    settings: Settings = ctx["settings"]
    try:
        return await mail.deliver_due(state.pool, settings)
    except TRANSIENT_ERRORS as exc:  # Postgres away: the next run tries again; the outbox keeps everything
        log.warning("mail delivery paused: %s", type(exc).__name__)
        return 0
