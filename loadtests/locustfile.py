"""Locust scenarios for an EventPlane deployment: SDKs sending events, and people using the dashboard.

    EVENTPLANE_LOAD_TENANTS=tenants.json EVENTPLANE_LOAD_INGEST_URL=http://127.0.0.1:8000 \\
    EVENTPLANE_LOAD_API_URL=http://127.0.0.1:8001 locust -f loadtests/locustfile.py --headless -u 50 -t 30s

`make loadtest` does all of this against a local stack it starts. The tenants file comes from
`python -m loadtests.provision` (workspaces with write keys). Do not pass `--host`: it would send both
users to one server. Any non-2xx answer counts as a failure, so locust exits non-zero on any.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from pathlib import Path
from typing import Any

import orjson
from locust import HttpUser, between, task

from loadtests import payloads

TRACK = "/api/v1/tracking/track"
BATCH = "/api/v1/tracking/batch"


def _tenants() -> list[dict[str, Any]]:
    path = Path(os.environ.get("EVENTPLANE_LOAD_TENANTS", "loadtests/tenants.json"))
    workspaces: list[dict[str, Any]] = orjson.loads(path.read_bytes())["workspaces"]
    return workspaces


class SdkUser(HttpUser):
    """An app with an SDK: single events as they happen, and batches of 10-100 as SDKs flush queues.
    Each user is one app instance of a random workspace, with a key of that workspace."""

    host = os.environ.get("EVENTPLANE_LOAD_INGEST_URL", "http://127.0.0.1:8000")
    wait_time = between(0.01, 0.2)
    weight = 4

    def on_start(self) -> None:
        workspace = random.choice(_tenants())
        self.headers = {"X-API-Key": random.choice(workspace["keys"]), "Content-Type": "application/json"}
        self.rng = random.Random()

    def _event(self) -> dict[str, Any]:
        # SDKs send a message id (the server deduplicates retries on it) and sent_at (for clock skew).
        return payloads.event(self.rng, now=dt.datetime.now(dt.UTC), message_id=str(uuid.uuid4()))

    @task(8)
    def track(self) -> None:
        body = {**self._event(), "sent_at": dt.datetime.now(dt.UTC).isoformat()}
        self.client.post(TRACK, data=orjson.dumps(body), headers=self.headers, name="track")

    @task(2)
    def batch(self) -> None:
        events = [self._event() for _ in range(self.rng.randint(10, 100))]
        body = {"events": events, "sent_at": dt.datetime.now(dt.UTC).isoformat()}
        self.client.post(BATCH, data=orjson.dumps(body), headers=self.headers, name="batch")


class DashboardUser(HttpUser):
    """A person in the dashboard: signs up and logs in once, owns a workspace, and mostly reads (its
    workspaces, keys, members, usage), sometimes creates and revokes a key, edits, invites, refreshes."""

    host = os.environ.get("EVENTPLANE_LOAD_API_URL", "http://127.0.0.1:8001")
    wait_time = between(0.5, 2.0)
    weight = 1

    def on_start(self) -> None:
        tag = uuid.uuid4().hex[:12]
        email, password = f"load-{tag}@example.com", f"pw-{uuid.uuid4().hex}"
        self.client.post("/api/v1/auth/signup", json={"email": email, "password": password, "name": "Load"})
        self._tokens(self.client.post("/api/v1/auth/login", json={"email": email, "password": password}))
        ws = self.client.post("/api/v1/workspaces", json={"name": f"Dash {tag}", "slug": f"dash-{tag}"},
                              headers=self.auth)  # fmt: skip
        self.ws = f"/api/v1/workspaces/{ws.json()['id']}"

    def _tokens(self, response: Any) -> None:
        data = response.json()
        self.refresh_token = data["refresh_token"]
        self.auth = {"Authorization": f"Bearer {data['access_token']}"}

    def get(self, path: str, name: str) -> None:
        self.client.get(path, headers=self.auth, name=name)

    @task(10)
    def workspaces(self) -> None:
        self.get("/api/v1/workspaces", "GET /workspaces")

    @task(5)
    def workspace(self) -> None:
        self.get(self.ws, "GET /workspaces/{id}")

    @task(5)
    def me(self) -> None:
        self.get("/api/v1/me", "GET /me")

    @task(5)
    def keys(self) -> None:
        self.get(f"{self.ws}/api-keys", "GET /workspaces/{id}/api-keys")

    @task(3)
    def members(self) -> None:
        self.get(f"{self.ws}/members", "GET /workspaces/{id}/members")

    @task(5)
    def usage(self) -> None:
        self.get(f"{self.ws}/usage", "GET /workspaces/{id}/usage")

    @task(2)
    def billing(self) -> None:
        self.get(f"{self.ws}/billing", "GET /workspaces/{id}/billing")

    @task(1)
    def create_and_revoke_key(self) -> None:
        body = {"name": "ci", "scopes": ["write"]}
        made = self.client.post(f"{self.ws}/api-keys", json=body, headers=self.auth, name="POST /api-keys")
        if made.ok:
            key_id = made.json()["id"]
            self.client.delete(f"{self.ws}/api-keys/{key_id}", headers=self.auth, name="DELETE /api-keys/{id}")

    @task(1)
    def describe(self) -> None:
        body = {"description": f"edited {dt.datetime.now(dt.UTC).isoformat()}"}
        self.client.patch(self.ws, json=body, headers=self.auth, name="PATCH /workspaces/{id}")

    @task(1)
    def invite(self) -> None:
        body = {"email": f"invitee-{uuid.uuid4().hex[:10]}@example.com", "role": "VIEWER"}
        self.client.post(f"{self.ws}/invites", json=body, headers=self.auth, name="POST /workspaces/{id}/invites")

    @task(1)
    def refresh(self) -> None:
        self._tokens(self.client.post("/api/v1/auth/refresh", json={"refresh_token": self.refresh_token}))
