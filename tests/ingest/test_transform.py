"""The pure transforms, without any server. (The skew correction itself runs in the worker's SQL:
tests/workers/test_store.py checks it.)"""

from __future__ import annotations

import datetime as dt

import pytest

from eventplane.errors import ApiError
from ingest.transform import Limits, parse_batch, parse_track, to_rows

LIMITS = Limits(max_event_bytes=32 * 1024, max_batch_events=2500)
RECEIVED_US = 1_763_812_800_000_000  # 2025-11-22T12:00:00Z
UTC = dt.UTC


def test_rows_carry_the_clients_timestamp_and_sent_at() -> None:
    body = b'{"event_type":"e","user_id":"u","timestamp":"2020-01-01T00:00:00Z","sent_at":"2020-01-01T00:00:30Z"}'
    (row,) = to_rows(parse_track(body, LIMITS), "w", RECEIVED_US, 2025)
    assert row[7] == dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert row[8] == dt.datetime(2020, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert row[9] == RECEIVED_US


def test_the_batch_sent_at_applies_to_events_without_their_own() -> None:
    body = (
        b'{"sent_at":"2020-01-01T01:00:00+01:00","events":['
        b'{"event_type":"e","user_id":"u","timestamp":"2020-01-01T00:00:00Z"},'
        b'{"event_type":"e","user_id":"u","timestamp":"2020-01-01T00:00:00Z","sent_at":"2020-01-01T00:00:09Z"}]}'
    )
    first, second = to_rows(parse_batch(body, LIMITS), "w", RECEIVED_US, 2025)
    assert first[8] == dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert second[8] == dt.datetime(2020, 1, 1, 0, 0, 9, tzinfo=UTC)


def test_naive_times_are_utc() -> None:
    body = b'{"event_type":"e","user_id":"u","timestamp":"2021-05-01T10:00:00"}'
    (row,) = to_rows(parse_track(body, LIMITS), "w", RECEIVED_US, 2025)
    assert row[7] == dt.datetime(2021, 5, 1, 10, tzinfo=UTC)
    assert row[8] is None


def test_without_timestamp_sent_at_is_dropped_and_message_id_is_generated() -> None:
    body = b'{"event_type":"e","anonymous_id":"a","sent_at":"2021-05-01T10:00:00Z"}'
    (row,) = to_rows(parse_track(body, LIMITS), "w", RECEIVED_US, 2025)
    assert (row[7], row[8]) == (None, None)
    assert len(row[1]) == 36


def test_properties_are_kept_as_the_clients_json_and_null_becomes_empty() -> None:
    body = b'{"event_type":"e","user_id":"u","properties":{"a": [1, "x"]}}'
    assert to_rows(parse_track(body, LIMITS), "w", 0, 2025)[0][6] == b'{"a": [1, "x"]}'
    body = b'{"event_type":"e","user_id":"u","properties":null}'
    assert to_rows(parse_track(body, LIMITS), "w", 0, 2025)[0][6] == b"{}"


def test_an_absurd_sent_at_is_refused_not_left_to_the_worker() -> None:
    body = b'{"event_type":"e","user_id":"u","timestamp":"0001-01-01T00:00:00Z","sent_at":"9999-01-01T00:00:00Z"}'
    with pytest.raises(ApiError) as info:
        to_rows(parse_track(body, LIMITS), "w", RECEIVED_US, 2025)
    assert (info.value.status, info.value.code, info.value.details) == (400, "VALIDATION_ERROR", {"field": "sent_at"})


def test_errors_name_the_event_index() -> None:
    body = b'{"events":[{"event_type":"e","user_id":"u"},{"event_type":"e","properties":[1],"user_id":"u"}]}'
    with pytest.raises(ApiError) as info:
        to_rows(parse_batch(body, LIMITS), "w", RECEIVED_US, 2025)
    assert info.value.details == {"field": "events[1].properties"}


def test_unknown_fields_are_ignored() -> None:
    body = b'{"event_type":"e","user_id":"u","context":{"library":"x"},"type":"track"}'
    assert parse_track(body, LIMITS).events[0].event_type == "e"
