"""Wire types of the tracking endpoints; decoders are built once, at import."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec

NonEmpty200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Id255 = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
DropReason = Annotated[str, msgspec.Meta(pattern="^[a-z_]{1,40}$")]
DropCount = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


class Event(msgspec.Struct, gc=False):
    """One tracking event. Unknown fields are ignored."""

    event_type: NonEmpty200
    user_id: Id255 | None = None
    anonymous_id: Id255 | None = None
    value: float | None = None
    # Kept as the client's JSON text: stored as jsonb without decoding and re-encoding. Must be an object.
    properties: msgspec.Raw = msgspec.Raw(b"{}")
    timestamp: dt.datetime | None = None
    message_id: MessageId | None = None
    sent_at: dt.datetime | None = None
    context: msgspec.Raw = msgspec.Raw(b"null")  # the SDK's context (library, ip, locale...): an object


class ClientReport(msgspec.Struct, forbid_unknown_fields=True):
    """Events an SDK dropped before sending, by reason; `id` makes a retried report count once."""

    id: uuid.UUID
    dropped: Annotated[dict[DropReason, DropCount], msgspec.Meta(max_length=16)]


class BatchBody(msgspec.Struct):
    """`{"events": [...], "sent_at"?, "client_report"?}`; a bare JSON array of events is accepted too."""

    events: list[Event]
    sent_at: dt.datetime | None = None
    client_report: ClientReport | None = None


class RawBatchBody(msgspec.Struct):
    """The same body with each event left as JSON text: read only to measure events of a large body."""

    events: list[msgspec.Raw]


event_decoder = msgspec.json.Decoder(Event)
batch_decoder = msgspec.json.Decoder(BatchBody | list[Event])
raw_batch_decoder = msgspec.json.Decoder(RawBatchBody | list[msgspec.Raw])
any_decoder = msgspec.json.Decoder()
