"""Property tests of event validation: any input is either a valid event or an ApiError (never another
exception), and valid events survive the trip to a queue row unchanged."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventplane.errors import ApiError
from eventplane.queue import deserialize, serialize
from ingest.transform import Limits, parse_batch, parse_track, to_rows

LIMITS = Limits(max_event_bytes=32 * 1024, max_batch_events=2500)
text = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
valid_events = st.fixed_dictionaries(
    {"event_type": st.text(min_size=1, max_size=200), "user_id": st.text(min_size=1, max_size=255)},
    optional={
        "value": st.floats(allow_nan=False, allow_infinity=False),
        "properties": st.dictionaries(text, json_values, max_size=5),
        "message_id": st.text(min_size=1, max_size=100),
        "anonymous_id": st.text(min_size=1, max_size=255),
    },
)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@settings(max_examples=300)
@given(json_values)
def test_any_json_is_an_event_or_an_api_error(doc: Any) -> None:
    body = json.dumps(doc).encode()  # json, not orjson: integers beyond 64 bits are fair input too
    for parse in (parse_track, parse_batch):
        try:
            to_rows(parse(body, LIMITS), "ws", 0, 2025)
        except ApiError as error:
            assert 400 <= error.status < 500 and error.code


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_any_bytes_are_an_event_or_an_api_error(body: bytes) -> None:
    for parse in (parse_track, parse_batch):
        try:
            to_rows(parse(body, LIMITS), "ws", 0, 2025)
        except ApiError as error:
            assert 400 <= error.status < 500


@settings(max_examples=300)
@given(valid_events)
def test_valid_events_reach_the_queue_unchanged(event: dict[str, Any]) -> None:
    body = json.dumps(event).encode()
    if _has_nul(event):
        try:
            parse_track(body, LIMITS)
        except ApiError as error:
            assert error.code == "INVALID_CHARACTER"
            return
        raise AssertionError("a NUL character was accepted")
    (queued,) = to_rows(parse_track(body, LIMITS), "ws", 1_700_000_000_000_000, 2025)
    row = deserialize(serialize(queued))
    assert row[2] == event["event_type"] and row[3] == event["user_id"]
    assert row[5] == event.get("value")
    assert json.loads(row[6]) == event.get("properties", {})  # the client's JSON text, byte for byte
    if "message_id" in event:
        assert row[1] == event["message_id"]
