"""Wire types of the event data API (api/events.py, api/live.py)."""

from __future__ import annotations

import datetime as dt

import msgspec
from msgspec import Struct


class EventOut(Struct, kw_only=True):
    """A stored event. `properties` and `context` are the JSON stored, passed through as is."""

    message_id: str
    event_type: str
    user_id: str | None
    anonymous_id: str | None
    value: float | None
    properties: msgspec.Raw
    timestamp: dt.datetime  # the client's time, skew-corrected (what filters and the order use)
    received_at: dt.datetime
    context: msgspec.Raw | None


class EventTypeOut(Struct, kw_only=True):
    event_type: str
    events: int  # stored events of this type in the range
    last_seen: dt.date  # the last UTC day with one (usage is counted per day)


class EventTypesOut(Struct, kw_only=True):
    items: list[EventTypeOut]
