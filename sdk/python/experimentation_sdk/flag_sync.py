"""Keeping the config document fresh in one daemon thread: the stream pushes each change (the edge
sends it within a second); while the stream is down, it reconnects with backoff and polls the document
with its ETag every `poll_interval` seconds (304 when unchanged)."""

from __future__ import annotations

import contextlib
import http.client
import logging
import random
import socket
import threading
import time

from experimentation_sdk.flag_config import ConfigStore, parse
from experimentation_sdk.flag_http import FlagHttp, FlagHttpError, events

log = logging.getLogger("experimentation_sdk.flags")
FETCH_TIMEOUT = 10.0
# The stream is re-opened after this long without a byte (the edge's keep-alives come far more often),
# so a connection that died silently is noticed.
STREAM_IDLE_TIMEOUT = 60.0
_ERRORS = (OSError, http.client.HTTPException, FlagHttpError, ValueError)


class ConfigSync:
    def __init__(
        self,
        endpoints: FlagHttp,
        store: ConfigStore,
        *,
        stream: bool = True,
        poll_interval: float = 30.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._http = endpoints
        self._store = store
        self._use_stream = stream
        self._poll_interval = poll_interval
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._last_poll = float("-inf")
        self.streaming = False  # whether the stream is connected now (for stats and tests)
        self._thread = threading.Thread(target=self._run, name="experimentation-sdk-flags", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked stream read (close() alone does not)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def poll(self) -> None:
        """One conditional GET of the document."""
        self._last_poll = time.monotonic()
        held = self._store.current
        fetched = self._http.fetch_config(held.etag if held else None, FETCH_TIMEOUT)
        if fetched.status == 200:
            self._store.offer(parse(fetched.body, fetched.etag))

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self._use_stream:
                try:
                    failures = 0 if self._stream_once() else failures + 1
                except _ERRORS as exc:
                    failures += 1
                    if not self._stop.is_set():
                        log.debug("flag config stream down: %s", exc)
                finally:
                    self.streaming = False
            self._wait_and_poll(self._backoff(failures) if self._use_stream else self._poll_interval)

    def _stream_once(self) -> bool:
        """Follow the stream until it ends; whether it delivered a document (else the next reconnect
        backs off, so a server that keeps closing at once is not hammered)."""
        sock, resp = self._http.stream(STREAM_IDLE_TIMEOUT)
        delivered = False
        self._sock = sock
        try:
            if self._stop.is_set():  # stop() ran before the socket was here to shut down
                return False
            self.streaming = True
            self._poll_safely()  # subscribed: a change from now on arrives on the stream; catch up on older ones
            for name, data in events(resp):
                if name == "config":
                    self._store.offer(parse(data))
                    delivered = True
                if self._stop.is_set():
                    break
        finally:
            self._sock = None
            resp.close()
            sock.close()
        return delivered

    def _wait_and_poll(self, delay: float) -> None:
        """Wait `delay` before reconnecting; poll meanwhile whenever the last poll is `poll_interval` old."""
        deadline = time.monotonic() + delay
        while not self._stop.is_set():
            now = time.monotonic()
            if now - self._last_poll >= self._poll_interval:
                self._poll_safely()
                continue
            if now >= deadline:
                return
            self._stop.wait(min(deadline, self._last_poll + self._poll_interval) - now)

    def _poll_safely(self) -> None:
        try:
            self.poll()
        except _ERRORS as exc:
            log.debug("flag config poll failed: %s", exc)

    def _backoff(self, failures: int) -> float:
        if failures == 0:
            return 0.0  # a stream that delivered and then ended: reconnect at once
        ceiling = min(self._backoff_max, self._backoff_base * 2 ** min(failures, 16))
        return random.uniform(ceiling / 2, ceiling)
