"""Building one event: checked against the edge's rules and encoded to JSON once, in the caller's thread.

Checking here matters because the edge refuses a whole batch for one bad event: a bad event must be
dropped alone (and counted) before it can take 99 good ones down with it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_EVENT_BYTES = 32_768  # the edge's limit per event, measured on the event's JSON text
MAX_EVENT_TYPE = 200
MAX_ID = 255
MAX_MESSAGE_ID = 100


class InvalidEvent(ValueError):
    """The event breaks a rule of the edge; `reason` is the drop reason it is counted under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Encoded:
    message_id: str
    data: bytes  # the event as a JSON object, UTF-8


def rfc3339(moment: dt.datetime) -> str:
    """UTC, microseconds, `Z`; a naive time is taken as UTC, as the edge does."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now() -> str:
    return rfc3339(dt.datetime.now(dt.UTC))


def encode(
    event_type: str,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    properties: Mapping[str, Any] | None = None,
    value: float | None = None,
    timestamp: dt.datetime | None = None,
    message_id: str | None = None,
) -> Encoded:
    _text("event_type", event_type, MAX_EVENT_TYPE)
    if user_id is None and anonymous_id is None:
        raise InvalidEvent("invalid", "one of user_id or anonymous_id is required")
    event: dict[str, Any] = {"event_type": event_type}
    if user_id is not None:
        event["user_id"] = _text("user_id", user_id, MAX_ID)
    if anonymous_id is not None:
        event["anonymous_id"] = _text("anonymous_id", anonymous_id, MAX_ID)
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidEvent("invalid", f"value must be a finite number, not {value!r}")
        event["value"] = value
    if properties is not None:
        if not isinstance(properties, Mapping):
            raise InvalidEvent("invalid", f"properties must be a mapping, not {type(properties).__name__}")
        event["properties"] = properties
    if timestamp is not None and not isinstance(timestamp, dt.datetime):
        raise InvalidEvent("invalid", f"timestamp must be a datetime, not {type(timestamp).__name__}")
    event["timestamp"] = rfc3339(timestamp) if timestamp is not None else now()
    message_id = str(uuid.uuid4()) if message_id is None else _text("message_id", message_id, MAX_MESSAGE_ID)
    event["message_id"] = message_id
    data = _dumps(event)
    if len(data) > MAX_EVENT_BYTES:
        raise InvalidEvent("too_large", f"event {event_type!r} is {len(data)} bytes; the limit is {MAX_EVENT_BYTES}")
    return Encoded(message_id, data)


def _text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise InvalidEvent("invalid", f"{name} must be a string of 1-{limit} characters")
    return value


def _dumps(event: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default)
        data = text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise InvalidEvent("invalid", f"event is not JSON-serialisable: {exc}") from None
    if b"\\u0000" in data and _has_nul(event):  # json escapes NUL; the edge cannot store it
        raise InvalidEvent("invalid", "event holds a NUL character (\\u0000), which cannot be stored")
    return data


def _default(obj: object) -> Any:
    if isinstance(obj, dt.datetime):
        return rfc3339(obj)
    if isinstance(obj, dt.date | uuid.UUID):
        return str(obj)
    if isinstance(obj, decimal.Decimal) and obj.is_finite():
        return float(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _has_nul(node: object) -> bool:
    if isinstance(node, str):
        return "\x00" in node
    if isinstance(node, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in node.items())
    if isinstance(node, list | tuple | set | frozenset):
        return any(_has_nul(v) for v in node)
    return False
