"""Segment's HTTP tracking API (`/v1/track`, `/v1/batch`, ...): wire types, and messages -> our events.

Messages become the `Event`s of our own endpoints, so the rows, limits, exactly-once ledger and skew
correction are the same code. The mapping is documented in docs/segment.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from eventplane.errors import ApiError, validation
from ingest.transform import (
    Limits,
    Parsed,
    _batch_too_large,
    _check_text,
    _schema_error,
    _too_deep,
    _too_large,
)
from ingest.wire import Event, Id255, MessageId, NonEmpty200

Type = Literal["track", "identify", "page", "screen", "group", "alias"]
ROUTES: dict[str, Type | None] = {
    "/v1/track": "track",
    "/v1/identify": "identify",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
    "/v1/batch": None,
}
# The event_type each message type is stored as (track: its own `event`).
EVENT_TYPES: dict[str, str] = {
    "identify": "$identify",
    "page": "$page",
    "screen": "$screen",
    "group": "$group",
    "alias": "$alias",
}
SUCCESS = b'{"success":true}'
MISSING_KEY = "Missing write key: send it as writeKey in the body, as HTTP Basic '<key>:' or in 'X-API-Key: <key>'"
Name = Annotated[str, msgspec.Meta(max_length=1000)]


class Message(msgspec.Struct, gc=False):
    """One Segment message. `integrations` and unknown fields are ignored."""

    type: Type | None = None
    userId: Id255 | None = None
    anonymousId: Id255 | None = None
    event: NonEmpty200 | None = None
    name: Name | None = None
    category: Name | None = None
    properties: msgspec.Raw = msgspec.Raw(b"{}")
    traits: msgspec.Raw = msgspec.Raw(b"{}")
    groupId: Id255 | None = None
    previousId: Id255 | None = None
    context: msgspec.Raw = msgspec.Raw(b"null")
    timestamp: dt.datetime | None = None
    originalTimestamp: dt.datetime | None = None
    messageId: MessageId | None = None
    sentAt: dt.datetime | None = None


class SegmentBatch(msgspec.Struct):
    batch: list[Message]
    context: msgspec.Raw = msgspec.Raw(b"null")
    sentAt: dt.datetime | None = None


class _RawBatch(msgspec.Struct):
    batch: list[msgspec.Raw]


class _WriteKey(msgspec.Struct):
    writeKey: str | None = None


_message_decoder = msgspec.json.Decoder(Message)
_batch_decoder = msgspec.json.Decoder(SegmentBatch)
_raw_batch_decoder = msgspec.json.Decoder(_RawBatch)
_key_decoder = msgspec.json.Decoder(_WriteKey)
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def write_key(body: bytes) -> str | None:
    """The `writeKey` of a body, for clients that send the key only there."""
    try:
        return _key_decoder.decode(body).writeKey
    except msgspec.ValidationError:
        return None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "INVALID_JSON", f"Body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None


def parse(path: str, body: bytes, limits: Limits) -> Parsed:
    """A Segment body: one message (its type given by the route) or `{"batch": [...]}`."""
    kind = ROUTES[path]
    _check_text(body)
    try:
        if kind is None:
            messages, context, sent_at, prefix = _decode_batch(body, limits)
        else:
            if len(body) > limits.max_event_bytes:
                raise _too_large(0, len(body), limits.max_event_bytes)
            messages, context, sent_at, prefix = [_message_decoder.decode(body)], None, None, None
    except msgspec.MsgspecError as exc:
        raise _schema_error(exc, "") from None
    except RecursionError:
        raise _too_deep() from None
    if not messages:
        raise validation("The batch has no messages", "batch")
    events = [_to_event(m, kind or m.type, context, _where(prefix, i)) for i, m in enumerate(messages)]
    return Parsed(events, sent_at, prefix)


def _decode_batch(
    body: bytes, limits: Limits
) -> tuple[list[Message], msgspec.Raw | None, dt.datetime | None, str | None]:
    if len(body) > limits.max_event_bytes:
        _check_sizes(body, limits)
    try:
        decoded = _batch_decoder.decode(body)
    except msgspec.ValidationError:
        _check_sizes(body, limits)  # a batch too large is refused as such, whatever its messages hold
        raise
    if len(decoded.batch) > limits.max_batch_events:
        raise _batch_too_large(len(decoded.batch), limits.max_batch_events)
    return decoded.batch, _checked_raw(decoded.context, "", "context"), decoded.sentAt, "batch"


def _check_sizes(body: bytes, limits: Limits) -> None:
    raws = _raw_batch_decoder.decode(body).batch
    if len(raws) > limits.max_batch_events:
        raise _batch_too_large(len(raws), limits.max_batch_events)
    for i, raw in enumerate(raws):
        if len(raw) > limits.max_event_bytes:
            raise _too_large(i, len(raw), limits.max_event_bytes)


def _where(prefix: str | None, index: int) -> str:
    return f"{prefix}[{index}]." if prefix else ""


def _require(value: object, where: str, field: str, kind: str) -> None:
    if value is None:
        raise validation(f"{where}{field}: required for {kind}", f"{where}{field}")


def _object(raw: msgspec.Raw) -> dict[str, Any]:
    value: dict[str, Any] = _object_decoder.decode(raw)
    return value


def _checked_raw(raw: msgspec.Raw | None, where: str, field: str) -> msgspec.Raw | None:
    if raw is None or bytes(raw) == b"null":
        return None
    if bytes(raw)[:1] != b"{":
        raise validation(f"{where}{field}: must be a JSON object", f"{where}{field}")
    return raw


def _to_event(m: Message, kind: Type | None, batch_context: msgspec.Raw | None, where: str) -> Event:
    if kind is None:
        raise validation(f"{where}type: required: one of {', '.join(EVENT_TYPES)} or track", f"{where}type")
    if m.userId is None and m.anonymousId is None:
        raise validation(f"{where}userId: one of userId or anonymousId is required", f"{where}userId")
    properties = _checked_raw(m.properties, where, "properties") or msgspec.Raw(b"{}")
    if kind == "track":
        _require(m.event, where, "event", kind)
        event_type = m.event or ""
    else:
        event_type = EVENT_TYPES[kind]
        properties = _extras(m, kind, properties, where)
    return Event(
        event_type=event_type,
        user_id=m.userId,
        anonymous_id=m.anonymousId,
        properties=properties,
        timestamp=m.timestamp or m.originalTimestamp,
        message_id=m.messageId,
        sent_at=m.sentAt,
        context=_checked_raw(m.context, where, "context") or batch_context or msgspec.Raw(b"null"),
    )


def _extras(m: Message, kind: Type, properties: msgspec.Raw, where: str) -> msgspec.Raw:
    """Fields of identify, page, screen, group and alias, kept in properties under `$` names."""
    extra: dict[str, Any] = {}
    if kind in ("identify", "group"):
        extra["$traits"] = _object(_checked_raw(m.traits, where, "traits") or msgspec.Raw(b"{}"))
    if kind in ("page", "screen"):
        if m.name is not None:
            extra["$name"] = m.name
        if m.category is not None:
            extra["$category"] = m.category
    if kind == "group":
        _require(m.groupId, where, "groupId", kind)
        extra["$group_id"] = m.groupId
    if kind == "alias":
        _require(m.previousId, where, "previousId", kind)
        extra["$previous_id"] = m.previousId
    if not extra:
        return properties
    return msgspec.Raw(_encoder.encode(_object(properties) | extra))
