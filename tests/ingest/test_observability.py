"""What operators see: metrics at /metrics, and a request id that follows events into the worker's log."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from workers.metrics import WorkerMetrics

TRACK = "/api/v1/tracking/track"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_edge_metrics_count_requests_rejections_and_cache(edge: httpx.AsyncClient, tenant: Tenant) -> None:
    before = samples((await edge.get("/metrics")).text)
    for _ in range(3):
        assert (
            await edge.post(TRACK, json={"event_type": "m", "user_id": "u"}, headers=tenant.headers)
        ).status_code == 202
    assert (await edge.post(TRACK, content=b"{", headers=tenant.headers)).status_code == 400
    after = samples((await edge.get("/metrics")).text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("eventplane_ingest_requests_total", route="track", status="202") == 3
    assert delta("eventplane_ingest_requests_total", route="track", status="400") == 1
    assert delta("eventplane_ingest_rejections_total", code="INVALID_JSON") == 1
    assert delta("eventplane_ingest_events_accepted_total") == 3
    assert delta("eventplane_ingest_key_cache_lookups_total", result="hit") >= 3
    assert ("eventplane_queue_depth_events", ()) in after
    assert ("eventplane_queue_oldest_age_seconds", ()) in after


async def test_request_id_is_echoed_and_follows_the_events_to_the_commit(
    edge: httpx.AsyncClient, tenant: Tenant, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    r = await edge.post(
        TRACK, json={"event_type": "t", "user_id": "u"}, headers={**tenant.headers, "X-Request-Id": "trace-42"}
    )
    assert r.headers["x-request-id"] == "trace-42"
    generated = await edge.post(TRACK, json={"event_type": "t", "user_id": "u"}, headers=tenant.headers)
    assert generated.headers["x-request-id"] != r.headers["x-request-id"]
    bad = await edge.post(TRACK, json={}, headers={**tenant.headers, "X-Request-Id": "no spaces <allowed>"})
    assert bad.headers["x-request-id"] != "no spaces <allowed>"
    with caplog.at_level(logging.INFO, logger="eventplane.workers.commits"):
        await drain(settings)
    commits = [rec for rec in caplog.records if rec.getMessage() == "committed"]
    assert any("trace-42" in rec.request_ids for rec in commits)  # type: ignore[attr-defined]
    assert any(generated.headers["x-request-id"] in rec.request_ids for rec in commits)  # type: ignore[attr-defined]


def test_worker_serves_its_metrics_over_http() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics = WorkerMetrics()
    metrics.commit_rows.observe(120)
    metrics.stored.inc(120)
    metrics.serve(port)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    values = samples(text)
    assert values[("eventplane_worker_events_stored_total", ())] == 120
    assert values[("eventplane_worker_commit_rows_count", ())] == 1
