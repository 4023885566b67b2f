from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import new_account, unique_slug


def _counts(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["handler"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "eventplane_api_requests_total"
    }


async def test_requests_are_counted_by_handler_and_status_without_ids(api: httpx.AsyncClient) -> None:
    before = _counts((await api.get("/metrics")).text)
    account = await new_account(api)
    assert (await api.get("/api/v1/me", headers=account.headers)).status_code == 200
    missing = "/api/v1/workspaces/00000000-0000-4000-8000-000000000000"
    assert (await api.get(missing, headers=account.headers)).status_code == 404
    after = _counts((await api.get("/metrics")).text)
    grown = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert any(h.endswith("signup") and s == "201" for h, _, s in grown)
    assert any(s == "404" and m == "GET" for _, m, s in grown)
    assert not any("00000000" in h for h, _, _ in after)  # paths' ids never become labels


async def test_a_path_with_several_methods_labels_each_handler(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    slug = unique_slug()
    assert (await api.post("/api/v1/workspaces", json={"name": slug, "slug": slug},
                           headers=account.headers)).status_code == 201  # fmt: skip
    assert (await api.get("/api/v1/workspaces", headers=account.headers)).status_code == 200
    # A method the path does not serve: Route answers 405 without calling the dispatcher.
    assert (await api.put("/api/v1/orgs", headers=account.headers)).status_code == 405
    counts = _counts((await api.get("/metrics")).text)
    assert ("workspaces.create", "POST", "201") in counts and ("workspaces.list_mine", "GET", "200") in counts
    assert ("method_not_allowed", "PUT", "405") in counts
    assert not any("dispatch" in h or "<locals>" in h for h, _, _ in counts)
