"""Wire types of the tracking endpoints; decoders are built once, at import."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

NonEmpty200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Id255 = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Event(msgspec.Struct):
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
    """`{"events": [...]}`; each event is decoded on its own so that errors can name its index."""

    events: list[msgspec.Raw]
    sent_at: dt.datetime | None = None


event_decoder = msgspec.json.Decoder(Event)
batch_decoder = msgspec.json.Decoder(Batch | list[msgspec.Raw])
any_decoder = msgspec.json.Decoder()
