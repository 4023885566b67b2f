"""README's flag quickstart, end to end: a flag and an experiment made through the management API (a
session, as a person would), answered by the Python SDK against the real edge."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest_asyncio
from experimentation_sdk import ExperimentationClient

from api.app import create_app
from eventplane.settings import Settings

API = "/api/v1"


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # The suite signs up and logs in many users from 127.0.0.1: per-address limits are tested elsewhere.
    app = create_app(replace(settings, signup_limit_per_ip=100_000, login_limit_per_ip=100_000))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        yield client


async def test_readme_quickstart_is_enabled_and_get_variant(edge: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    r = await api.post(f"{API}/auth/signup", json={"email": email, "password": "a long passphrase", "name": "Ada"})
    assert r.status_code == 201, r.text
    r = await api.post(f"{API}/auth/login", json={"email": email, "password": "a long passphrase"})
    auth = {"authorization": f"Bearer {r.json()['access_token']}"}
    r = await api.post(f"{API}/workspaces", json={"name": "Acme", "slug": f"acme-{uuid.uuid4().hex[:8]}"}, headers=auth)
    ws = r.json()["id"]
    pro_plan = {"attribute": "plan", "operator": "eq", "value": "pro"}
    flag = {"key": "new-checkout", "enabled": True, "rollout": 0, "rules": [{"match": "all", "conditions": [pro_plan]}]}
    r = await api.post(f"{API}/workspaces/{ws}/feature-flags", json=flag, headers=auth)
    assert r.status_code == 201, r.text
    experiment = {"key": "checkout-test", "conversion": {"event_type": "purchase"},
                  "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}]}  # fmt: skip
    r = await api.post(f"{API}/workspaces/{ws}/experiments", json=experiment, headers=auth)
    assert r.status_code == 201, r.text
    r = await api.patch(f"{API}/workspaces/{ws}/experiments/checkout-test", json={"status": "running"}, headers=auth)
    assert r.status_code == 200, r.text
    r = await api.post(f"{API}/workspaces/{ws}/api-keys", json={"name": "app", "scopes": ["write"]}, headers=auth)
    key = r.json()["key"]

    client = ExperimentationClient(key, str(edge.base_url).rstrip("/"), flush_at_exit=False)
    try:
        pro = await asyncio.to_thread(client.is_enabled, "new-checkout", user_id="u_42", attributes={"plan": "pro"})
        free = await asyncio.to_thread(client.is_enabled, "new-checkout", user_id="u_42", attributes={"plan": "free"})
        variant = await asyncio.to_thread(client.get_variant, "checkout-test", user_id="u_42")
        assert (pro, free) == (True, False)
        assert variant in ("control", "treatment")
    finally:
        await asyncio.to_thread(client.close)
