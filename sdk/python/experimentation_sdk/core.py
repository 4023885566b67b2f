"""The engine both clients share: the queue, the one sender thread, flush, close, spool, fork safety.

Locking: `_cond` guards the queue and the sender's state; the ledger has its own lock, always taken
after `_cond` (never the other way round). No I/O and no user callback run under either lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from experimentation_sdk import lifecycle
from experimentation_sdk.accounting import Ledger, Stats
from experimentation_sdk.batch import Batch
from experimentation_sdk.delivery import Delivery, Outcome, Result, describe
from experimentation_sdk.errors import DeliveryError
from experimentation_sdk.events import Encoded
from experimentation_sdk.options import Options
from experimentation_sdk.queue import EventQueue
from experimentation_sdk.spool import Spool
from experimentation_sdk.transport import Transport

log = logging.getLogger("experimentation_sdk")
REPORT_RETRY_SECONDS = 30.0  # after a report sent alone failed, before sending one alone again
SPOOL_BUDGET_SECONDS = 10.0  # a spooled batch is tried this long at start; it stays on disk otherwise
WARN_EVERY_SECONDS = 5.0  # queue-full warnings, at most this often per reason (with the running count)


class Core:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.ledger = Ledger()
        self.transport = Transport(options.base_url, options.timeout)
        self.delivery = Delivery(options, self.transport, self.ledger)
        self.spool = Spool(options.spool_dir, options.api_key) if options.spool_dir else None
        self._warned: dict[str, float] = {}
        self._spool_read = options.sync_mode  # the first sender thread sends what earlier clients spooled
        self._reset_state()
        self._spool_busy = self.spool is not None and not options.sync_mode  # flush waits for the spool too
        self._closed = False
        lifecycle.register(self)
        if options.sync_mode:
            self._send_spooled()
        else:
            with self._cond:
                self._ensure_sender()

    def _reset_state(self) -> None:
        self._cond = threading.Condition()
        self._queue = EventQueue(self.options.max_queue_size)
        self._in_flight: Batch | None = None
        self._leftover: list[Batch] = []
        self._flushing = 0
        self._lost = 0  # events lost after they were queued (evicted, refused, out of retries)
        self._reports_settled = 0
        self._report_due: float | None = None
        self._report_quiet_until = 0.0
        self._stopping = False
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self._spool_busy = False

    # -- the caller's side ------------------------------------------------------------------------------

    def enqueue(self, event: Encoded) -> bool:
        if self.options.sync_mode:
            return self._send_inline(event) if not self._closed else self._refuse_closed()
        evicted = False
        with self._cond:
            if self._closed:
                refused = True
            else:
                refused = False
                self._ensure_sender()
                if self._queue.full():
                    if self.options.queue_full == "block":
                        self._cond.wait_for(lambda: not self._queue.full() or self._closed, self.options.block_timeout)
                    elif self.options.queue_full == "drop_oldest":
                        self._queue.evict_oldest()
                        self._lost += 1
                        evicted = True
                full = self._queue.full() or self._closed
                if not full:
                    self._queue.put(event)
                    if len(self._queue) == 1 or len(self._queue) >= self.options.batch_size:
                        self._cond.notify_all()
        if refused:
            return self._refuse_closed()
        if evicted:
            self.dropped("queue_full_oldest", 1, "queue full: the oldest queued event was dropped")
        elif full:
            self.dropped("queue_full", 1, f"queue full ({self.options.max_queue_size} events): event dropped")
            return False
        return True

    def flush(self, timeout: float) -> bool:
        if self.options.sync_mode:
            return self._flush_inline()
        with self._cond:
            if threading.current_thread() is self._thread:
                return False  # called from on_error, in the sender itself: it cannot wait for itself
            if self._queue or self.ledger.has_unreported():
                self._ensure_sender()
                if self._thread is None or not self._thread.is_alive():
                    return False  # none could be started (closing, interpreter exit): close() sends inline
            lost, reports = self._lost, self._reports_settled
            self._flushing += 1
            self._cond.notify_all()
            try:
                done = self._cond.wait_for(lambda: self._drained(reports), timeout)
            finally:
                self._flushing -= 1
            return done and self._lost == lost

    def close(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
        delivered = self.flush(timeout)
        with self._cond:
            self._stopping = True
            if not delivered:
                self._abort.set()  # a batch waiting to retry comes back to us, for the spool
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(max(deadline - time.monotonic(), 0.1))
        if thread is None or not thread.is_alive():  # none ran (or it died): what is left is sent from here
            self._send_inline_until(deadline)
        with self._cond:
            batches, self._leftover = self._leftover, []
            if self._in_flight is not None:  # still in a request: sent again from the spool, deduplicated
                batches.append(self._in_flight)
            events = self._queue.clear()
        self._keep_or_drop(batches, events)
        self.transport.close()
        lifecycle.unregister(self)
        return delivered

    def stats(self) -> Stats:
        with self._cond:
            queued = len(self._queue) + (len(self._in_flight) if self._in_flight else 0)
        return self.ledger.snapshot(queued)

    def dropped(self, reason: str, count: int, message: str, result: Result | None = None) -> None:
        """Count a loss, log it, tell `on_error`."""
        self.ledger.drop(reason, count, failed=result is not None)
        if reason.startswith("queue_full"):
            now = time.monotonic()
            if now - self._warned.get(reason, -WARN_EVERY_SECONDS) >= WARN_EVERY_SECONDS:
                self._warned[reason] = now
                total = self.ledger.snapshot(0).dropped.get(reason, 0)
                log.warning("experimentation_sdk: %s (%s: %d so far)", message, reason, total)
        else:
            log.error("experimentation_sdk: %d event(s) dropped (%s): %s", count, reason, message)
        self._tell(DeliveryError(
            reason, message, count=count,
            status=result.status if result else None,
            code=result.code if result else None,
            details=result.details if result else None,
        ))  # fmt: skip

    # -- the sender thread ------------------------------------------------------------------------------

    def _ensure_sender(self) -> None:
        """Under `_cond`. Starts the sender in this process (again after a fork, or if it died)."""
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        thread = threading.Thread(target=self._run, name="experimentation-sdk-sender", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down: close() delivers inline
            return
        self._thread = thread

    def _run(self) -> None:
        with self._cond:
            read_spool, self._spool_read = not self._spool_read, True
        if read_spool:
            try:
                self._send_spooled()
            finally:
                with self._cond:
                    self._spool_busy = False
                    self._cond.notify_all()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                result = self.delivery.send(batch, self._abort)
            except Exception as exc:  # a bug must not kill the sender and strand the queue
                log.exception("experimentation_sdk: unexpected error sending a batch")
                result = Result(Outcome.EXHAUSTED, 1, message=repr(exc))
            self._settle(batch, result)

    def _next_batch(self) -> Batch | None:
        size, interval = self.options.batch_size, self.options.flush_interval
        with self._cond:
            while not self._abort.is_set():
                if self._queue:
                    age = self._queue.oldest_age()
                    if self._flushing or self._stopping or len(self._queue) >= size or age >= interval:
                        self._in_flight = Batch(self._queue.take(size), self.ledger.report())
                        self._cond.notify_all()  # room for callers blocked on a full queue
                        return self._in_flight
                    self._cond.wait(interval - age)
                elif self._stopping:
                    return None
                elif self.ledger.has_unreported() and time.monotonic() >= self._report_quiet_until:
                    now = time.monotonic()
                    if self._report_due is None:
                        self._report_due = now + interval
                    if self._flushing or now >= self._report_due:
                        self._report_due = None
                        self._in_flight = Batch([], self.ledger.report())  # a report travelling alone
                        return self._in_flight
                    self._cond.wait(self._report_due - now)
                elif self.ledger.has_unreported():
                    self._cond.wait(self._report_quiet_until - time.monotonic())
                else:
                    self._cond.wait()
        return None

    def _settle(self, batch: Batch, result: Result) -> None:
        n = len(batch)
        if result.outcome is Outcome.DELIVERED:
            self.ledger.acknowledged(batch.report, n)
        elif not n:
            log.warning("experimentation_sdk: drop report not delivered (%s); kept for later", describe(result))
        elif result.outcome is not Outcome.ABORTED:
            self.dropped(result.outcome.value, n, describe(result), result)
        with self._cond:
            if result.outcome is Outcome.ABORTED:
                self._leftover.append(batch)
            elif result.outcome is not Outcome.DELIVERED:
                self._lost += n
            if not n:
                self._reports_settled += 1
                if result.outcome is not Outcome.DELIVERED:
                    self._report_quiet_until = time.monotonic() + REPORT_RETRY_SECONDS
            self._in_flight = None
            self._cond.notify_all()

    def _drained(self, reports_before: int) -> bool:
        if self._queue or self._in_flight is not None or self._spool_busy:
            return False
        return (
            not self.ledger.has_unreported()
            or self._reports_settled > reports_before
            or time.monotonic() < self._report_quiet_until
            or self._thread is None
        )

    # -- sync mode, spool, shutdown ---------------------------------------------------------------------

    def _send_inline(self, event: Encoded) -> bool:
        batch = Batch([event], self.ledger.report())
        result = self.delivery.send(batch, self._abort)
        if result.outcome is Outcome.DELIVERED:
            self.ledger.acknowledged(batch.report, 1)
            return True
        if result.outcome is not Outcome.REJECTED and self.spool is not None:
            self._keep_or_drop([], [event])
        else:
            self.dropped(result.outcome.value, 1, describe(result), result)
        return False

    def _send_inline_until(self, deadline: float) -> None:
        """No sender thread could be started (the interpreter is shutting down): send from here."""
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue:
                    return
                batch = Batch(self._queue.take(self.options.batch_size), self.ledger.report())
            result = self.delivery.send(batch, self._abort, deadline - time.monotonic())
            if result.outcome is Outcome.EXHAUSTED:  # out of time, not of retries: the spool may keep it
                result = Result(Outcome.ABORTED, result.attempts, result.status, result.code, result.message)
            self._settle(batch, result)
            if result.outcome is Outcome.ABORTED:
                return

    def _flush_inline(self) -> bool:
        report = self.ledger.report()
        if report is None:
            return True
        result = self.delivery.send(Batch([], report), self._abort)
        if result.outcome is Outcome.DELIVERED:
            self.ledger.acknowledged(report, 0)
            return True
        return False

    def _send_spooled(self) -> None:
        if self.spool is None:
            return
        for path, batch in self.spool.pending():
            result = self.delivery.send(batch, self._abort, min(self.options.retry_budget, SPOOL_BUDGET_SECONDS))
            if result.outcome is Outcome.DELIVERED:
                self.spool.delivered(path)
                self.ledger.add("sent", len(batch))
            elif result.outcome is Outcome.REJECTED and result.status not in (401, 403):
                self.spool.rejected(path)
                log.error("experimentation_sdk: spooled batch %s refused (%s); renamed, not sent again",
                          path.name, describe(result))  # fmt: skip
            else:
                log.warning("experimentation_sdk: spooled batches left for later (%s)", describe(result))
                return

    def _keep_or_drop(self, batches: list[Batch], events: Iterable[Encoded]) -> None:
        """At close: what was not delivered goes to the spool, or is counted as dropped (`shutdown`)."""
        rest = EventQueue(max_size=1)
        for event in events:
            rest.put(event)
        while rest:
            batches.append(Batch(rest.take(self.options.batch_size), None))
        count = sum(len(b) for b in batches)
        if self.spool is None:
            if count:
                self.dropped("shutdown", count, "not delivered before close/exit (no spool_dir set)")
            return
        # One fresh report of every unacknowledged drop rides in the first file (the reports the
        # batches carried are part of it).
        report = self.ledger.report()
        if report is not None:
            self.ledger.handed_off(report)
        written = 0
        try:
            for batch in [b for b in batches if len(b)] or [Batch([], None)]:
                if len(batch) or report is not None:
                    self.spool.write(Batch(batch.events, report, batch.id))
                report = None
                written += len(batch)
                self.ledger.add("spooled", len(batch))
        except OSError as exc:
            self.dropped("shutdown", count - written, f"spool write failed: {exc}")
            return
        if count:
            log.warning("experimentation_sdk: %d undelivered event(s) kept in %s", count, self.spool.directory)

    def _refuse_closed(self) -> bool:
        self.dropped("closed", 1, "track() after close(): event dropped")
        return False

    def _tell(self, error: DeliveryError) -> None:
        callback = self.options.on_error
        if callback is None:
            return
        try:
            callback(error)
        except Exception:
            log.exception("experimentation_sdk: on_error callback raised")

    # -- fork -------------------------------------------------------------------------------------------

    def before_fork(self) -> None:
        self._cond.acquire()
        self.ledger.lock.acquire()

    def after_fork_parent(self) -> None:
        self.ledger.lock.release()
        self._cond.release()

    def after_fork_child(self) -> None:
        """The child starts empty: the parent's queue is the parent's to send (and it does)."""
        self.ledger.reset()
        self.transport.reset()
        self._warned = {}
        self._reset_state()  # _spool_read stays as the parent left it: the parent sends the spool
