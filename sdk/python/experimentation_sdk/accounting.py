"""What this client sent and lost, and the drop report it owes the server.

Drops are counted here and carried to the edge in each batch's `client_report` until a 2xx acknowledges
them; a retried batch carries the same report (same id), so the edge counts it once.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_REPORTED = 10**9  # the edge's limit per reason and report; the rest travels in the next one


@dataclass(frozen=True)
class Report:
    id: str
    dropped: dict[str, int]

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "dropped": self.dropped}


@dataclass(frozen=True)
class Stats:
    """A snapshot: `queued` waiting or in flight, `sent` acknowledged by the edge, `failed` given up on
    after delivery attempts (also in `dropped`), `dropped` every loss by reason, `retries` attempts
    repeated, `spooled` written to `spool_dir` for a later client."""

    queued: int
    sent: int
    failed: int
    dropped: dict[str, int]  # a copy: changing it changes nothing
    retries: int
    spooled: int


@dataclass
class Ledger:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    spooled: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    unreported: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def drop(self, reason: str, count: int, *, failed: bool = False) -> None:
        with self.lock:
            self.dropped[reason] += count
            self.unreported[reason] += count
            if failed:
                self.failed += count

    def report(self) -> Report | None:
        """A new report of every drop not yet acknowledged, or None when there is none."""
        with self.lock:
            counts = {reason: min(n, MAX_REPORTED) for reason, n in self.unreported.items() if n > 0}
        return Report(str(uuid.uuid4()), counts) if counts else None

    def has_unreported(self) -> bool:
        with self.lock:
            return any(n > 0 for n in self.unreported.values())

    def acknowledged(self, report: Report | None, events: int) -> None:
        with self.lock:
            self.sent += events
            if report is not None:
                self.unreported.subtract(report.dropped)

    def handed_off(self, report: Report) -> None:
        """The report now travels in a spool file, which a later client sends."""
        with self.lock:
            self.unreported.subtract(report.dropped)

    def reset(self) -> None:
        """After fork, in the child: its own counts from zero, and a lock nobody holds."""
        self.lock = threading.Lock()
        self.sent = self.failed = self.retries = self.spooled = 0
        self.dropped = Counter()
        self.unreported = Counter()

    def add(self, name: str, count: int) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + count)

    def snapshot(self, queued: int) -> Stats:
        with self.lock:
            dropped = {k: v for k, v in self.dropped.items() if v}
            return Stats(queued, self.sent, self.failed, dropped, self.retries, self.spooled)
