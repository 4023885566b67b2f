"""Pure transforms: request body -> validated events -> queue rows. No I/O, unit-testable."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from eventplane.errors import ApiError, validation
from eventplane.queue import Row
from ingest.wire import Event, any_decoder, batch_decoder, event_decoder

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_US = dt.timedelta(microseconds=1)
# Postgres timestamptz and Python datetimes both hold years 1-9999; a skew correction that leaves them
# (an absurd sent_at) is refused here rather than failing in the worker.
MIN_US = (dt.datetime(1, 1, 2, tzinfo=dt.UTC) - EPOCH) // ONE_US
MAX_US = (dt.datetime(9999, 12, 30, tzinfo=dt.UTC) - EPOCH) // ONE_US
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<field>[^`]+)`")


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int
    max_batch_events: int


@dataclass(frozen=True)
class Parsed:
    events: list[Event]
    sent_at: dt.datetime | None


def _join(prefix: str, path: str) -> str:
    path = path.lstrip(".")
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}" if path else prefix


def _schema_error(exc: msgspec.MsgspecError, prefix: str) -> ApiError:
    if not isinstance(exc, msgspec.ValidationError):  # ValidationError subclasses DecodeError
        return ApiError(400, "INVALID_JSON", f"Body is not valid JSON: {exc}", None)
    m = _MSGSPEC_PATH.match(str(exc))
    assert m is not None  # the pattern matches any string
    message, path = m["msg"], m["path"] or ""
    missing = _MISSING_FIELD.match(message)
    if missing:
        path = f"{path}.{missing['field']}"
    field = _join(prefix, path) or "$"
    return validation(f"{field}: {message}", field)


def _check_text(body: bytes) -> None:
    """Postgres text and jsonb cannot hold NUL or invalid UTF-8: refuse them here, not in the worker."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(
                400, "INVALID_ENCODING", f"Body is not valid UTF-8 (bad byte at offset {exc.start})"
            ) from None
    if b"\\u0000" in body:  # cheap screen; the walk below rules out an escaped backslash before "u0000"
        try:
            doc = any_decoder.decode(body)
        except msgspec.DecodeError:
            return  # the typed decode reports the syntax error with its position
        for path in _nul_paths(doc, ""):
            raise ApiError(
                400,
                "INVALID_CHARACTER",
                f"{path or 'body'}: NUL characters (\\u0000) cannot be stored; remove them",
                {"field": path or "$"},
            )


def _nul_paths(node: Any, path: str) -> Iterator[str]:
    if isinstance(node, str):
        if "\x00" in node:
            yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            if "\x00" in key:
                yield child
            yield from _nul_paths(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nul_paths(value, f"{path}[{i}]")


def _decode_event(raw: bytes | msgspec.Raw, prefix: str) -> Event:
    try:
        event = event_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise _schema_error(exc, prefix) from None
    if event.user_id is None and event.anonymous_id is None:
        field = _join(prefix, "user_id")
        raise validation(f"{field}: one of user_id or anonymous_id is required", field)
    first = memoryview(event.properties)[:1].tobytes()
    if first == b"n":  # null
        event.properties = msgspec.Raw(b"{}")
    elif first != b"{":
        field = _join(prefix, "properties")
        raise validation(f"{field}: must be a JSON object", field)
    return event


def _too_deep() -> ApiError:
    return validation("JSON is nested too deeply (more than about 900 levels)", "$")


def parse_track(body: bytes, limits: Limits) -> Parsed:
    """The body of POST /track: one event."""
    try:
        return _parse_track(body, limits)
    except RecursionError:
        raise _too_deep() from None


def parse_batch(body: bytes, limits: Limits) -> Parsed:
    """The body of POST /batch: {"events": [...], "sent_at"?} or a bare JSON array of events."""
    try:
        return _parse_batch(body, limits)
    except RecursionError:
        raise _too_deep() from None


def _parse_track(body: bytes, limits: Limits) -> Parsed:
    if len(body) > limits.max_event_bytes:
        raise ApiError(
            400,
            "EVENT_TOO_LARGE",
            f"Event is {len(body)} bytes; the limit is {limits.max_event_bytes}",
            {"index": 0, "limit": limits.max_event_bytes},
        )
    _check_text(body)
    event = _decode_event(body, "")
    return Parsed([event], None)


def _parse_batch(body: bytes, limits: Limits) -> Parsed:
    _check_text(body)
    try:
        decoded = batch_decoder.decode(body)
    except msgspec.MsgspecError as exc:
        raise _schema_error(exc, "") from None
    raws, sent_at, prefix = (
        (decoded, None, "") if isinstance(decoded, list) else (decoded.events, decoded.sent_at, "events")
    )
    if not raws:
        raise validation("The batch has no events", prefix or "$")
    if len(raws) > limits.max_batch_events:
        raise ApiError(
            413,
            "BATCH_TOO_LARGE",
            f"Batch has {len(raws)} events; the limit is {limits.max_batch_events}. Split it.",
            {"limit": limits.max_batch_events},
        )
    events = []
    for i, raw in enumerate(raws):
        if len(raw) > limits.max_event_bytes:
            raise ApiError(
                400,
                "EVENT_TOO_LARGE",
                f"Event {i} is {len(raw)} bytes; the limit is {limits.max_event_bytes}",
                {"index": i, "limit": limits.max_event_bytes},
            )
        events.append(_decode_event(raw, f"{prefix}[{i}]"))
    return Parsed(events, sent_at)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def to_micros(value: dt.datetime) -> int:
    return (_utc(value) - EPOCH) // ONE_US


def event_time_us(event: Event, received_us: int, batch_sent_at: dt.datetime | None) -> int:
    """The event's time. With `sent_at`, corrected for the client's clock skew as Segment does:
    timestamp = received_at - (sent_at - timestamp)."""
    if event.timestamp is None:
        return received_us
    sent_at = event.sent_at or batch_sent_at
    if sent_at is None:
        return to_micros(event.timestamp)
    return received_us - (to_micros(sent_at) - to_micros(event.timestamp))


def to_row(event: Event, workspace_id: str, received_us: int, batch_sent_at: dt.datetime | None) -> Row:
    ts = event_time_us(event, received_us, batch_sent_at)
    if not MIN_US <= ts <= MAX_US:
        raise validation("timestamp: with sent_at applied, the event time falls outside years 1-9999", "timestamp")
    return (
        workspace_id,
        event.message_id or str(uuid.uuid4()),
        event.event_type,
        event.user_id,
        event.anonymous_id,
        event.value,
        bytes(event.properties),
        ts,
        received_us,
    )
