"""The bounded queue of encoded events and its policy when full. Not locked itself: the client's
sender guards it with its condition, so waiting for room and waiting for events share one lock."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from experimentation_sdk.batch import ENVELOPE_BYTES, MAX_BODY_BYTES
from experimentation_sdk.events import Encoded


@dataclass(frozen=True, slots=True)
class Queued:
    event: Encoded
    at: float  # time.monotonic() when queued


class EventQueue:
    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._items: deque[Queued] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.max_size

    def put(self, event: Encoded) -> None:
        self._items.append(Queued(event, time.monotonic()))

    def evict_oldest(self) -> None:
        self._items.popleft()

    def oldest_age(self) -> float:
        return time.monotonic() - self._items[0].at if self._items else 0.0

    def take(self, max_events: int) -> list[Encoded]:
        """The oldest events that fit one request: at most `max_events` and the edge's body limit."""
        taken: list[Encoded] = []
        size = ENVELOPE_BYTES
        while self._items and len(taken) < max_events:
            event = self._items[0].event
            if taken and size + len(event.data) + 1 > MAX_BODY_BYTES:
                break
            size += len(event.data) + 1
            taken.append(self._items.popleft().event)
        return taken

    def clear(self) -> list[Encoded]:
        items = [q.event for q in self._items]
        self._items.clear()
        return items
