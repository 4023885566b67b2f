"""HTTP over the standard library: kept-alive connections to one base URL, safe to share between threads.

Separate from delivery so that fetching flag configurations later uses the same connections and rules.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from experimentation_sdk._version import __version__

MAX_RESPONSE_BYTES = 65_536  # answers are small; an error body beyond this is cut
USER_AGENT = f"experimentation-sdk-python/{__version__}"
_IDLE = 4  # connections kept for reuse


class TransportError(Exception):
    """No HTTP answer: connection refused or reset, timeout, TLS failure, malformed response.

    `reused`: it happened on a kept-alive connection, which the server may simply have closed while
    idle; worth one immediate retry on a fresh connection."""

    def __init__(self, message: str, reused: bool) -> None:
        super().__init__(message)
        self.reused = reused


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Transport:
    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._ssl = ssl.create_default_context() if self._https else None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        conn, reused = self._checkout()
        return self._exchange(conn, reused, method, path, body, headers)

    def reset(self) -> None:
        """Forget every connection (after fork: the sockets belong to the parent)."""
        self._lock = threading.Lock()
        self._idle = []

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        reused: bool,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
    ) -> Response:
        try:
            conn.request(method, self._prefix + path, body=body, headers={"User-Agent": USER_AGENT, **headers})
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_BYTES)
            answer = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
            keep = not resp.will_close and resp.isclosed()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise TransportError(text, reused) from exc
        if keep:
            self._checkin(conn)
        else:
            conn.close()
        return answer

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < _IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
