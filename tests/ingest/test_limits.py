"""Every limit and every kind of bad input gets its status and stable code, and nothing is queued."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
import pytest

from eventplane import keyformat
from tests.conftest import Tenant

TRACK = "/api/v1/tracking/track"
BATCH = "/api/v1/tracking/batch"
OK = {"event_type": "e", "user_id": "u"}


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj)


CASES: list[tuple[str, str, bytes, dict[str, str], int, str, Any]] = [
    # (name, path, body, extra headers, status, code, expected details subset)
    ("malformed json", TRACK, b'{"event_type": "e",', {}, 400, "INVALID_JSON", None),
    ("empty body", TRACK, b"", {}, 400, "INVALID_JSON", None),
    ("wrong type", TRACK, _json({"event_type": 5, "user_id": "u"}), {}, 400, "VALIDATION_ERROR",
     {"field": "event_type"}),
    ("missing event_type", TRACK, _json({"user_id": "u"}), {}, 400, "VALIDATION_ERROR", {"field": "event_type"}),
    ("empty event_type", TRACK, _json({"event_type": "", "user_id": "u"}), {}, 400, "VALIDATION_ERROR",
     {"field": "event_type"}),
    ("event_type over 200", TRACK, _json({"event_type": "x" * 201, "user_id": "u"}), {}, 400, "VALIDATION_ERROR",
     {"field": "event_type"}),
    ("no identity", TRACK, _json({"event_type": "e"}), {}, 400, "VALIDATION_ERROR", {"field": "user_id"}),
    ("message_id over 100", TRACK, _json({**OK, "message_id": "m" * 101}), {}, 400, "VALIDATION_ERROR",
     {"field": "message_id"}),
    ("properties not object", TRACK, _json({**OK, "properties": [1]}), {}, 400, "VALIDATION_ERROR",
     {"field": "properties"}),
    ("bad timestamp", TRACK, _json({**OK, "timestamp": "yesterday"}), {}, 400, "VALIDATION_ERROR",
     {"field": "timestamp"}),
    ("value not number", TRACK, _json({**OK, "value": "3"}), {}, 400, "VALIDATION_ERROR", {"field": "value"}),
    ("nul in properties", TRACK, b'{"event_type":"e","user_id":"u","properties":{"k":"a\\u0000b"}}', {}, 400,
     "INVALID_CHARACTER", {"field": "properties.k"}),
    ("nul in event_type", TRACK, b'{"event_type":"e\\u0000","user_id":"u"}', {}, 400, "INVALID_CHARACTER",
     {"field": "event_type"}),
    ("invalid utf-8", TRACK, b'{"event_type":"e","user_id":"\xff\xfe"}', {}, 400, "INVALID_ENCODING", None),
    ("invalid utf-8 in properties", TRACK, b'{"event_type":"e","user_id":"u","properties":{"a":"\xc3"}}', {},
     400, "INVALID_ENCODING", None),
    ("event over 32 KB", TRACK, _json({**OK, "properties": {"p": "x" * 33_000}}), {}, 400, "EVENT_TOO_LARGE",
     {"index": 0}),
    ("batch event over 32 KB", BATCH, _json({"events": [OK, OK, {**OK, "properties": {"p": "x" * 33_000}}]}), {},
     400, "EVENT_TOO_LARGE", {"index": 2}),
    ("batch wrong type names index", BATCH, _json({"events": [OK, {"event_type": 1, "user_id": "u"}]}), {}, 400,
     "VALIDATION_ERROR", {"field": "events[1].event_type"}),
    ("bare array names index", BATCH, _json([OK, OK, {"user_id": "u"}]), {}, 400, "VALIDATION_ERROR",
     {"field": "[2].event_type"}),
    ("batch of 2,501", BATCH, _json({"events": [OK] * 2501}), {}, 413, "BATCH_TOO_LARGE", {"limit": 2500}),
    ("empty batch", BATCH, _json({"events": []}), {}, 400, "VALIDATION_ERROR", None),
    ("events not a list", BATCH, _json({"events": {"a": 1}}), {}, 400, "VALIDATION_ERROR", {"field": "events"}),
    ("body over 500 KB", BATCH, _json({"events": [{**OK, "properties": {"p": "x" * 30_000}}] * 18}), {}, 413,
     "PAYLOAD_TOO_LARGE", None),
    ("gzip over 500 KB inflated", BATCH, gzip.compress(_json({"events": [{**OK, "properties": {"p": "x" * 30_000}}]
     * 18})), {"content-encoding": "gzip"}, 413, "PAYLOAD_TOO_LARGE", None),
    ("gzip bomb", BATCH, gzip.compress(b" " * 50_000_000), {"content-encoding": "gzip"}, 413, "PAYLOAD_TOO_LARGE",
     None),
    ("not gzip", BATCH, b"plainly not gzip", {"content-encoding": "gzip"}, 400, "INVALID_GZIP", None),
    ("truncated gzip", BATCH, gzip.compress(_json({"events": [OK]}))[:-10], {"content-encoding": "gzip"}, 400,
     "INVALID_GZIP", None),
    ("unknown encoding", BATCH, _json({"events": [OK]}), {"content-encoding": "br"}, 415, "UNSUPPORTED_ENCODING",
     None),
    ("form content type", BATCH, _json({"events": [OK]}), {"content-type": "application/x-www-form-urlencoded"},
     415, "UNSUPPORTED_MEDIA_TYPE", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "path", "body", "extra", "status", "code", "details"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_input_gets_status_and_code(
    edge: httpx.AsyncClient,
    tenant: Tenant,
    name: str,
    path: str,
    body: bytes,
    extra: dict[str, str],
    status: int,
    code: str,
    details: Any,
) -> None:
    headers = httpx.Headers(tenant.headers)
    headers.update(extra)
    r = await edge.post(path, content=body, headers=headers)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if details is not None:
        assert details.items() <= error["details"].items()


async def test_limits_just_under_are_accepted(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await edge.post(BATCH, json={"events": [OK] * 2500}, headers=tenant.headers)
    assert (r.status_code, r.json()) == (202, {"accepted": 2500})
    big = {**OK, "properties": {"p": "x" * 32_000}}
    assert (await edge.post(TRACK, json=big, headers=tenant.headers)).status_code == 202


async def test_escaped_backslash_before_u0000_is_not_a_nul(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    body = b'{"event_type":"e","user_id":"u","properties":{"path":"C:\\\\u0000"}}'
    assert (await edge.post(TRACK, content=body, headers=tenant.headers)).status_code == 202


async def test_wrong_method_and_unknown_route(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await edge.get(TRACK, headers=tenant.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")
    assert (await edge.post("/api/v1/nope", headers=tenant.headers)).status_code == 404


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "AUTH_ERROR"),
        ({"X-API-Key": "not-a-key"}, "AUTH_ERROR"),
        ({"X-API-Key": keyformat.generate()}, "AUTH_ERROR"),  # well formed, unknown
        ({"Authorization": "Basic !!!"}, "AUTH_ERROR"),
        ({"Authorization": "Token abc"}, "AUTH_ERROR"),
    ],
    ids=["missing", "malformed", "unknown", "bad basic", "other scheme"],
)
async def test_bad_keys_get_401(edge: httpx.AsyncClient, headers: dict[str, str], code: str) -> None:
    r = await edge.post(TRACK, json=OK, headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (401, code)


async def test_a_mistyped_key_fails_its_checksum(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    typo = tenant.key[:-1] + ("A" if tenant.key[-1] != "A" else "B")
    assert not keyformat.well_formed(typo)
    r = await edge.post(TRACK, json=OK, headers={"X-API-Key": typo})
    assert r.status_code == 401
    assert "malformed" in r.json()["error"]["message"]


async def test_basic_auth_with_key_as_user_name_is_accepted(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await edge.post(TRACK, json=OK, auth=(tenant.key, ""))
    assert r.status_code == 202
