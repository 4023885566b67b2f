"""A corpus of hostile and odd input against the running edge: each gets its documented answer,
never a 500, and the edge keeps answering normal requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from eventplane.settings import Settings
from tests.conftest import Tenant, running_edge

TRACK = "/api/v1/tracking/track"
BATCH = "/api/v1/tracking/batch"


def deep(levels: int) -> bytes:
    return b'{"event_type":"e","user_id":"u","properties":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"


CORPUS: list[tuple[str, str, bytes, set[int]]] = [
    ("nesting 50 deep", TRACK, deep(50), {202}),
    ("nesting 5,000 deep", TRACK, deep(5000), {400}),
    ("array nesting 5,000 deep", BATCH, b"[" * 5000 + b"]" * 5000, {400}),
    ("huge string in event_type", TRACK, json.dumps({"event_type": "x" * 20_000, "user_id": "u"}).encode(), {400}),
    ("huge array in properties", TRACK, json.dumps({"event_type": "e", "user_id": "u",
                                                    "properties": {"a": list(range(5000))}}).encode(), {202}),
    ("huge array body", BATCH, b"[" + b"1," * 200_000 + b"1]", {413}),
    ("unknown fields ignored", TRACK, b'{"event_type":"e","user_id":"u","zzz":{"q":[1,2]},"type":"track"}', {202}),
    ("negative value", TRACK, b'{"event_type":"e","user_id":"u","value":-1e308}', {202}),
    ("value out of float range", TRACK, b'{"event_type":"e","user_id":"u","value":1e999}', {400}),
    ("huge integer in properties", TRACK, b'{"event_type":"e","user_id":"u","properties":{"n":1' + b"0" * 300 + b"}}",
     {202}),
    ("NaN literal", TRACK, b'{"event_type":"e","user_id":"u","value":NaN}', {400}),
    ("json null body", TRACK, b"null", {400}),
    ("json string body", BATCH, b'"events"', {400}),
    ("only whitespace", TRACK, b"   \n", {400}),
    ("trailing garbage", TRACK, b'{"event_type":"e","user_id":"u"} x', {400}),
    ("lone surrogate escape", TRACK, b'{"event_type":"e","user_id":"\\ud800"}', {400}),
    ("emoji as surrogate pair escape", TRACK, b'{"event_type":"\\ud83d\\ude00","user_id":"u"}', {202}),
    ("BOM before JSON", TRACK, b'\xef\xbb\xbf{"event_type":"e","user_id":"u"}', {400}),
    ("user_id as number", TRACK, b'{"event_type":"e","user_id":42}', {400}),
    ("timestamp as number", TRACK, b'{"event_type":"e","user_id":"u","timestamp":1700000000}', {400}),
    ("year 0 timestamp", TRACK, b'{"event_type":"e","user_id":"u","timestamp":"0000-01-01T00:00:00Z"}', {400}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "body", "statuses"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_corpus(
    edge: httpx.AsyncClient, tenant: Tenant, name: str, path: str, body: bytes, statuses: set[int]
) -> None:
    r = await edge.post(path, content=body, headers=tenant.headers)
    assert r.status_code in statuses, r.text
    if r.status_code >= 400:
        error = r.json()["error"]
        assert error["code"] and error["message"]
    # and the edge still answers a normal request
    ok = await edge.post(TRACK, json={"event_type": "after", "user_id": "u"}, headers=tenant.headers)
    assert ok.status_code == 202


async def _trickle(chunks: int, pause: float) -> AsyncIterator[bytes]:
    yield b'{"event_type":"e",'
    for _ in range(chunks):
        await asyncio.sleep(pause)
        yield b" "
    yield b'"user_id":"u"}'


async def test_a_body_that_trickles_in_is_cut_off_with_408(settings: Settings, tenant: Tenant) -> None:
    async with running_edge(replace(settings, body_timeout=0.5)) as edge:
        r = await edge.post(TRACK, content=_trickle(20, 0.1), headers=tenant.headers)
        assert (r.status_code, r.json()["error"]["code"]) == (408, "REQUEST_TIMEOUT")
        fast = await edge.post(TRACK, content=_trickle(2, 0.01), headers=tenant.headers)
        assert fast.status_code == 202


async def test_many_concurrent_bad_requests_do_not_take_the_edge_down(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    bad = [edge.post(BATCH, content=body, headers=tenant.headers) for _, _, body, s in CORPUS if 202 not in s] * 10
    answers = await asyncio.gather(*bad)
    assert all(400 <= r.status_code < 500 for r in answers)
    ok = await edge.post(TRACK, json={"event_type": "after", "user_id": "u"}, headers=tenant.headers)
    assert ok.status_code == 202
