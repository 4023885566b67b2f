"""Wire types of the tracking endpoints; decoders are built once, at import."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

NonEmpty200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Id255 = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Event(msgspec.Struct, gc=False):
    """One tracking event. Unknown fields (an SDK's `context`, say) are ignored."""

    event_type: NonEmpty200
    user_id: Id255 | None = None
    anonymous_id: Id255 | None = None
    value: float | None = None
    # Kept as the client's JSON text: stored as jsonb without decoding and re-encoding. Must be an object.
    properties: msgspec.Raw = msgspec.Raw(b"{}")
    timestamp: dt.datetime | None = None
    message_id: MessageId | None = None
    sent_at: dt.datetime | None = None


class Batch(msgspec.Struct):
    """`{"events": [...], "sent_at"?}`; a bare JSON array of events is accepted too."""

    events: list[Event]
    sent_at: dt.datetime | None = None


class RawBatch(msgspec.Struct):
    """The same body with each event left as JSON text: read only to measure events of a large body."""

    events: list[msgspec.Raw]


event_decoder = msgspec.json.Decoder(Event)
batch_decoder = msgspec.json.Decoder(Batch | list[Event])
raw_batch_decoder = msgspec.json.Decoder(RawBatch | list[msgspec.Raw])
any_decoder = msgspec.json.Decoder()
