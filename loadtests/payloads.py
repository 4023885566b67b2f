"""Realistic tracking payloads: what a web or backend SDK sends (about 400 bytes of JSON per event).

Events carry a `message_id` as SDKs do. In the bench's bodies it is "@ID@-<index>", which the wrk
script (post.lua) replaces per request, so that replayed bodies are new events to the workers.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import orjson

EVENT_TYPES = ("page_viewed", "button_clicked", "signed_up", "checkout_started", "order_completed", "search")
PATHS = ("/", "/pricing", "/docs/getting-started", "/blog/2026/launch", "/app/dashboard", "/settings/billing")
BROWSERS = ("Chrome 131", "Firefox 133", "Safari 18.2", "Edge 131")
BATCH_SIZE = 100


def event(rng: random.Random, *, now: dt.datetime, message_id: str | None = None) -> dict[str, Any]:
    kind = rng.choice(EVENT_TYPES)
    user = rng.randrange(100_000)
    properties: dict[str, Any] = {
        "path": rng.choice(PATHS),
        "referrer": rng.choice(("https://www.google.com/", "https://news.ycombinator.com/", None)),
        "title": "EventPlane: product analytics you host",
        "browser": rng.choice(BROWSERS),
        "os": rng.choice(("Windows 11", "macOS 15.2", "Linux", "iOS 18.2", "Android 15")),
        "screen": {"width": rng.choice((390, 1440, 1920)), "height": rng.choice((844, 900, 1080))},
        "utm": {"source": "newsletter", "campaign": f"spring-{rng.randrange(10)}"},
        "experiments": [f"exp-{rng.randrange(50)}" for _ in range(rng.randrange(4))],
    }
    if kind == "order_completed":
        properties["items"] = [{"sku": f"SKU-{rng.randrange(1000)}", "qty": rng.randrange(1, 4)} for _ in range(2)]
    body: dict[str, Any] = {
        "event_type": kind,
        "user_id": f"user_{user}" if rng.random() < 0.7 else None,
        "anonymous_id": f"anon-{user:08x}-{rng.randrange(1 << 32):08x}",
        "properties": properties,
        "timestamp": (now - dt.timedelta(milliseconds=rng.randrange(5000))).isoformat(),
    }
    if kind == "order_completed":
        body["value"] = round(rng.uniform(5, 500), 2)
    if message_id is not None:
        body["message_id"] = message_id
    return body


ID = "@ID@"  # replaced per request by the load generator


def single_bodies(count: int, seed: int = 1) -> list[bytes]:
    rng, now = random.Random(seed), dt.datetime.now(dt.UTC)
    return [orjson.dumps(event(rng, now=now, message_id=f"{ID}-0")) for _ in range(count)]


def batch_bodies(count: int, size: int = BATCH_SIZE, seed: int = 2) -> list[bytes]:
    rng, now = random.Random(seed), dt.datetime.now(dt.UTC)
    return [
        orjson.dumps({"events": [event(rng, now=now, message_id=f"{ID}-{i}") for i in range(size)]})
        for _ in range(count)
    ]
