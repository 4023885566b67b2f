"""The pure transforms, without any server."""

from __future__ import annotations

import datetime as dt

import pytest

from eventplane.errors import ApiError
from ingest.transform import Limits, parse_batch, parse_track, to_micros, to_row

LIMITS = Limits(max_event_bytes=32 * 1024, max_batch_events=2500)
RECEIVED = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
RECEIVED_US = to_micros(RECEIVED)


def _time(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


def test_skew_correction_uses_the_events_own_sent_at() -> None:
    body = b'{"event_type":"e","user_id":"u","timestamp":"2020-01-01T00:00:00Z","sent_at":"2020-01-01T00:00:30Z"}'
    (event,) = parse_track(body, LIMITS).events
    row = to_row(event, "w", RECEIVED_US, None)
    assert _time(row[7]) == RECEIVED - dt.timedelta(seconds=30)
    assert row[8] == RECEIVED_US


def test_skew_correction_falls_back_to_the_batch_sent_at() -> None:
    body = (
        b'{"sent_at":"2020-01-01T01:00:00+01:00",'
        b'"events":[{"event_type":"e","user_id":"u","timestamp":"2020-01-01T00:00:00Z"}]}'
    )
    parsed = parse_batch(body, LIMITS)
    row = to_row(parsed.events[0], "w", RECEIVED_US, parsed.sent_at)
    assert _time(row[7]) == RECEIVED  # sent_at equals timestamp: no skew


def test_timestamp_without_sent_at_is_kept_and_naive_means_utc() -> None:
    (event,) = parse_track(b'{"event_type":"e","user_id":"u","timestamp":"2021-05-01T10:00:00"}', LIMITS).events
    assert _time(to_row(event, "w", RECEIVED_US, None)[7]) == dt.datetime(2021, 5, 1, 10, tzinfo=dt.UTC)


def test_no_timestamp_means_received_at_and_message_id_is_generated() -> None:
    (event,) = parse_track(b'{"event_type":"e","anonymous_id":"a"}', LIMITS).events
    row = to_row(event, "w", RECEIVED_US, None)
    assert row[7] == RECEIVED_US
    assert len(row[1]) == 36


def test_properties_are_kept_as_the_clients_json_and_null_becomes_empty() -> None:
    (event,) = parse_track(b'{"event_type":"e","user_id":"u","properties":{"a": [1, "x"]}}', LIMITS).events
    assert to_row(event, "w", 0, None)[6] == b'{"a": [1, "x"]}'
    (event,) = parse_track(b'{"event_type":"e","user_id":"u","properties":null}', LIMITS).events
    assert to_row(event, "w", 0, None)[6] == b"{}"


def test_an_absurd_sent_at_is_refused_not_left_to_the_worker() -> None:
    body = b'{"event_type":"e","user_id":"u","timestamp":"0001-01-01T00:00:00Z","sent_at":"9999-01-01T00:00:00Z"}'
    (event,) = parse_track(body, LIMITS).events
    with pytest.raises(ApiError) as info:
        to_row(event, "w", RECEIVED_US, None)
    assert (info.value.status, info.value.code) == (400, "VALIDATION_ERROR")


def test_unknown_fields_are_ignored() -> None:
    body = b'{"event_type":"e","user_id":"u","context":{"library":"x"},"type":"track"}'
    assert parse_track(body, LIMITS).events[0].event_type == "e"
