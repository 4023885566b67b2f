"""Webhook delivery: the events a workspace stores, POSTed in batches to its destinations, signed.

Source of truth: `webhook_outbox` in Postgres. A trigger on `events` adds one row per (stored event,
matching destination) in the very transaction that stores the event, so an event is queued for its
destinations exactly when it exists; a row is deleted only after the destination answered 2xx. A killed
worker loses nothing: its claim on a destination (a lease: `next_attempt_at` pushed ahead) expires and
the batch is sent again, so delivery is at least once, and receivers deduplicate on `message_id`.

One batch per destination is in flight at a time, oldest first (by received_at, then, within one request,
by the events' own timestamps), so each destination sees a
workspace's events in order. An event committed late (a worker retrying a batch)
can arrive after newer ones. Failures back off (doubling from EVENTPLANE_WEBHOOK_RETRY_BASE to _MAX);
a destination without a success for EVENTPLANE_WEBHOOK_PAUSE_AFTER is paused: its queue is kept, new
events are no longer queued for it, and re-enabling it (PUT .../webhooks) resumes delivery.

Destinations on internal addresses (loopback, private, link-local, ...) are refused at each delivery,
after resolving the name, and the POST goes to the address checked (eventplane/webhook_urls.py); a refusal
is a failed attempt like any other, in the delivery log with its reason. EVENTPLANE_WEBHOOK_ALLOW_PRIVATE
turns this off.

Destinations live on their workspace's instance, beside its events, and each instance's workers deliver
their own (docs/scaling.md). A move sets `handed_off_at` on the source's destinations: no new claim there,
and the move waits out claims in flight before copying the outbox (eventplane/moves.py).

Signature (as Stripe's): header `EventPlane-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the destination's signing secret>`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from eventplane import webhook_urls
from eventplane.errors import TRANSIENT_ERRORS
from eventplane.settings import Settings

log = logging.getLogger("eventplane.workers.webhooks")
SIGNATURE_HEADER = "EventPlane-Signature"
KEEP_DELIVERIES = 1000  # log rows kept per destination
CONCURRENCY = 2  # destinations delivered to at once by one worker process
_running = asyncio.Lock()


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS context of every delivery client, made once per process: httpx builds a new one, loading
    the CA bundle, for each client, and this job makes a client every second (measured: about 7% of a
    busy worker's time, when no destination is due)."""
    return httpx.create_ssl_context()


_CLAIM = """
UPDATE webhook_destinations d SET next_attempt_at = now() + make_interval(secs => $1)
WHERE d.id = (
    SELECT w.id FROM webhook_destinations w
    WHERE w.enabled AND w.paused_at IS NULL AND w.handed_off_at IS NULL AND w.next_attempt_at <= now()
      AND EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.destination_id = w.id)
    ORDER BY w.next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.workspace_id::text, d.url, d.signing_secret, d.consecutive_failures
"""
_BATCH = """
SELECT id, payload::text FROM webhook_outbox WHERE destination_id = $1
ORDER BY received_at, event_time, id LIMIT $2
"""
_SUCCEEDED = """
UPDATE webhook_destinations SET consecutive_failures = 0, failing_since = NULL, next_attempt_at = now(),
    delivered_total = delivered_total + $2
WHERE id = $1
"""
_FAILED = """
UPDATE webhook_destinations SET consecutive_failures = consecutive_failures + 1,
    failures_total = failures_total + 1, failing_since = coalesce(failing_since, now()),
    next_attempt_at = now() + make_interval(secs => $2),
    paused_at = CASE WHEN coalesce(failing_since, now()) <= now() - make_interval(secs => $3) THEN now() END
WHERE id = $1
RETURNING paused_at IS NOT NULL
"""
_LOG = """
INSERT INTO webhook_deliveries (destination_id, events, ok, status_code, error, duration_ms)
SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM webhook_destinations WHERE id = $1)
"""
_TRIM = """
DELETE FROM webhook_deliveries WHERE destination_id = $1 AND id <= (
    SELECT id FROM webhook_deliveries WHERE destination_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)
"""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for this body sent at this time."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff(settings: Settings, failures: int) -> float:
    """Seconds before the next try after this many consecutive failures (with jitter)."""
    base = min(settings.webhook_retry_max, settings.webhook_retry_base * 2 ** min(failures - 1, 30))
    return float(base * random.uniform(0.8, 1.0))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str | None


class Deliverer:
    """Delivers due batches until no destination is due. Safe to run in many processes at once."""

    def __init__(self, pool: asyncpg.Pool, client: httpx.AsyncClient, settings: Settings) -> None:
        self._pool = pool
        self._client = client
        self._settings = settings
        self._lease = 2 * settings.webhook_timeout + 5  # a claim outlives one POST; a killed worker's expires

    async def run(self, budget: float) -> int:
        """Batches attempted (delivered or failed); no new batch starts after `budget` seconds."""
        until = time.monotonic() + budget
        counts = await asyncio.gather(*(self._loop(until) for _ in range(CONCURRENCY)))
        return sum(counts)

    async def _loop(self, until: float) -> int:
        attempted = 0
        while time.monotonic() < until and await self.deliver_one():
            attempted += 1
        return attempted

    async def deliver_one(self) -> bool:
        """Claim one due destination and send its oldest batch; False when none is due."""
        async with self._pool.acquire() as conn:
            claimed = await conn.fetchrow(_CLAIM, self._lease)
            if claimed is None:
                return False
            rows = await conn.fetch(_BATCH, claimed["id"], self._settings.webhook_batch_size)
            if not rows:  # emptied since the claim (deleted with its destination): release the lease
                await conn.execute(
                    "UPDATE webhook_destinations SET next_attempt_at = now() WHERE id = $1", claimed["id"]
                )
                return True
        body = _body(claimed["workspace_id"], str(claimed["id"]), [r[1] for r in rows])
        started = time.monotonic()
        outcome = await self._post(claimed["url"], claimed["signing_secret"], body)
        elapsed = int((time.monotonic() - started) * 1000)
        await self._record(claimed, [r[0] for r in rows], outcome, elapsed)
        return True

    async def _post(self, url: str, secret: str, body: bytes) -> Outcome:
        headers = {
            "content-type": "application/json",
            "user-agent": "EventPlane-Webhooks/1",
            "eventplane-delivery": str(uuid.uuid4()),
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        }
        target: str | httpx.URL = url
        extensions: dict[str, Any] = {}
        if not self._settings.webhook_allow_private:
            try:
                pinned = await webhook_urls.pin(url)
            except webhook_urls.Forbidden as refused:
                return Outcome(False, None, f"refused: {refused}"[:500])
            except (OSError, TimeoutError, UnicodeError, httpx.InvalidURL) as exc:
                return Outcome(False, None, f"DNS: {type(exc).__name__}: {exc}"[:500])
            # Sent to the address just checked (DNS may answer differently a moment later), with the URL's
            # own Host and TLS name, so certificates are verified against the host name as usual.
            target, headers["host"] = pinned.url, pinned.host_header
            extensions["sni_hostname"] = pinned.sni_hostname
        try:
            response = await self._client.post(target, content=body, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code, None)
        return Outcome(False, response.status_code, f"HTTP {response.status_code}")

    async def _record(self, claimed: Any, ids: list[int], outcome: Outcome, elapsed_ms: int) -> None:
        destination = claimed["id"]
        async with self._pool.acquire() as conn, conn.transaction():
            if outcome.ok:
                await conn.execute("DELETE FROM webhook_outbox WHERE id = ANY($1::bigint[])", ids)
                await conn.execute(_SUCCEEDED, destination, len(ids))
            else:
                delay = backoff(self._settings, claimed["consecutive_failures"] + 1)
                paused = await conn.fetchval(_FAILED, destination, delay, self._settings.webhook_pause_after)
                log.warning(
                    "webhook %s: %s; %s", destination, outcome.error, "paused" if paused else f"retry in {delay:.1f}s"
                )
            await conn.execute(_LOG, destination, len(ids), outcome.ok, outcome.status, outcome.error, elapsed_ms)
            await conn.execute(_TRIM, destination, KEEP_DELIVERIES)


def _body(workspace_id: str, destination_id: str, payloads: list[str]) -> bytes:
    # The stored JSON as is: no decode and re-encode per event.
    head = f'{{"workspace_id":"{workspace_id}","destination_id":"{destination_id}","events":['
    return (head + ",".join(payloads) + "]}").encode()


async def deliver(ctx: dict[str, Any]) -> int:
    """The arq cron job (every second): deliver what is due. One run per process at a time."""
    if _running.locked():
        return 0
    async with _running:
        settings: Settings = ctx["settings"]
        try:
            client = httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False, verify=_tls())
            async with client:
                # Within arq's job timeout; a batch cut off by it is sent again when its lease expires.
                budget = max(1.0, settings.job_timeout - 2 * settings.webhook_timeout - 1)
                return await Deliverer(ctx["state"].pool, client, settings).run(budget)
        except TRANSIENT_ERRORS as exc:  # Postgres away: the next run tries again
            log.warning("webhook delivery paused by %s", type(exc).__name__)
            return 0
