"""A batch: events already encoded, the drop report it carries, and its body with a fresh `sent_at`."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from experimentation_sdk.accounting import Report
from experimentation_sdk.events import Encoded, now

MAX_BODY_BYTES = 512_000  # the edge's limit, after decompression
ENVELOPE_BYTES = 2_048  # sent_at and a report of 16 reasons fit in this, with room to spare


@dataclass(frozen=True)
class Batch:
    events: Sequence[Encoded]
    report: Report | None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # X-Request-Id, the same on every attempt

    def __len__(self) -> int:
        return len(self.events)

    def body(self, compress: bool) -> bytes:
        """The request body; built on every attempt so `sent_at` is that attempt's time."""
        parts = [b'{"events":[', b",".join(e.data for e in self.events), b'],"sent_at":"', now().encode(), b'"']
        if self.report is not None:
            parts += [b',"client_report":', json.dumps(self.report.wire(), separators=(",", ":")).encode()]
        parts.append(b"}")
        raw = b"".join(parts)
        # Level 6 would take 3x the CPU for a few % less on this kind of JSON.
        return gzip.compress(raw, compresslevel=1 if len(raw) > 65_536 else 6, mtime=0) if compress else raw


def room(events: Sequence[Encoded]) -> int:
    """The bytes events take in a body (with their separating commas)."""
    return sum(len(e.data) for e in events) + max(len(events) - 1, 0)
