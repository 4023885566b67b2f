"""Sending one batch to the edge until it is acknowledged, refused, or its time budget is spent."""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from experimentation_sdk.accounting import Ledger
from experimentation_sdk.batch import Batch
from experimentation_sdk.options import Options
from experimentation_sdk.retry import Backoff, retry_after, retryable
from experimentation_sdk.transport import Transport, TransportError

log = logging.getLogger("experimentation_sdk")
BATCH_PATH = "/api/v1/tracking/batch"


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"  # a 4xx that a retry cannot fix
    EXHAUSTED = "retry_exhausted"  # the time budget ran out
    ABORTED = "aborted"  # the client is closing; the batch is still ours (spool it)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    attempts: int
    status: int | None = None
    code: str | None = None
    message: str = ""
    details: Any = None


class Delivery:
    def __init__(self, options: Options, transport: Transport, ledger: Ledger) -> None:
        self._options = options
        self._transport = transport
        self._ledger = ledger
        self._backoff = Backoff(options.backoff_base, options.backoff_max, options.max_retry_after)
        self._headers = {"X-API-Key": options.api_key, "Content-Type": "application/json"}
        if options.gzip:
            self._headers["Content-Encoding"] = "gzip"

    def send(self, batch: Batch, abort: threading.Event, budget: float | None = None) -> Result:
        deadline = time.monotonic() + (self._options.retry_budget if budget is None else budget)
        attempt = 0
        quick_retry = True  # one immediate retry for a kept-alive connection the server had closed
        while True:
            attempt += 1
            headers = {**self._headers, "X-Request-Id": batch.id}
            if attempt > 1:
                headers["X-Retry-Count"] = str(attempt - 1)
            status: int | None = None
            hint: float | None = None
            stale = False
            try:
                resp = self._transport.request("POST", BATCH_PATH, batch.body(self._options.gzip), headers)
            except TransportError as exc:
                failure = Result(Outcome.EXHAUSTED, attempt, message=str(exc))
                stale = exc.reused
            else:
                status = resp.status
                if 200 <= status < 300:
                    return Result(Outcome.DELIVERED, attempt, status)
                code, message, details = _error_of(resp.body)
                failure = Result(Outcome.EXHAUSTED, attempt, status, code, message, details)
                if not retryable(status):
                    return Result(Outcome.REJECTED, attempt, status, code, message, details)
                hint = retry_after(resp.headers.get("retry-after"))
            if stale and quick_retry:
                quick_retry, delay = False, 0.0
            else:
                delay = self._backoff.delay(attempt, hint)
            if time.monotonic() + delay > deadline:
                return failure
            log.info(
                "experimentation_sdk: batch of %d events not delivered (%s), retrying in %.2f s",
                len(batch), describe(failure), delay,
            )  # fmt: skip
            self._ledger.add("retries", 1)
            if abort.wait(delay):
                return Result(Outcome.ABORTED, attempt, status, failure.code, failure.message)


def _error_of(body: bytes) -> tuple[str | None, str, Any]:
    """The edge's `{"error": {"code", "message", "details"}}`; anything else is described, not trusted."""
    try:
        error = json.loads(body)["error"]
        return str(error["code"]), str(error.get("message", "")), error.get("details")
    except (ValueError, KeyError, TypeError):
        return None, body[:200].decode("utf-8", "replace"), None


def describe(result: Result) -> str:
    if result.status is None:
        return f"network error: {result.message}"
    return f"HTTP {result.status} {result.code or ''}: {result.message}".strip()
