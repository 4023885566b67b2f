"""Browsers may call the SDK routes from any page: preflights are answered without a key, and answers to a
request that names an Origin carry the headers that let the page read them."""

from __future__ import annotations

import httpx

from tests.conftest import Tenant

PAGE = "https://shop.example"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-api-key",
}


async def test_preflights_of_every_browser_route_are_answered_without_a_key(edge: httpx.AsyncClient) -> None:
    for path in ("/api/v1/tracking/batch", "/api/v1/tracking/track", "/v1/batch", "/api/v1/sdk/config",
                 "/api/v1/feature-flags/f/evaluate", "/ofrep/v1/evaluate/flags"):  # fmt: skip
        r = await edge.options(path, headers=PREFLIGHT)
        assert r.status_code == 204, (path, r.status_code, r.text)
        assert r.headers["access-control-allow-origin"] == PAGE
        allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "x-api-key", "content-encoding"} <= allowed
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in r.headers


async def test_answers_to_a_page_are_readable_by_it_and_others_carry_no_cors(
    edge: httpx.AsyncClient, tenant: Tenant
) -> None:
    event = {"events": [{"event_type": "page", "anonymous_id": "a"}]}
    r = await edge.post("/api/v1/tracking/batch", json=event, headers={**tenant.headers, "Origin": PAGE})
    assert r.status_code == 202
    assert r.headers["access-control-allow-origin"] == PAGE
    assert "x-request-id" in r.headers["access-control-expose-headers"]
    refused = await edge.post("/api/v1/tracking/batch", json=event, headers={"Origin": PAGE})
    assert (refused.status_code, refused.headers["access-control-allow-origin"]) == (401, PAGE)
    config = await edge.get("/api/v1/sdk/config", headers={**tenant.headers, "Origin": PAGE})
    assert config.headers["access-control-allow-origin"] == PAGE
    plain = await edge.post("/api/v1/tracking/batch", json=event, headers=tenant.headers)
    assert plain.status_code == 202 and "access-control-allow-origin" not in plain.headers
