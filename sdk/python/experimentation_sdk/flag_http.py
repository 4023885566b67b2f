"""The flag endpoints over HTTP: the config document (conditional GET), its event stream, and the
remote evaluation calls. One connection per call: these are rare (a poll every 30 s, a stream held
open, remote calls only before the first document), so pooling buys nothing here."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from experimentation_sdk.transport import USER_AGENT

CONFIG_PATH = "/api/v1/sdk/config"
STREAM_PATH = "/api/v1/sdk/config/stream"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


class FlagHttpError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Fetched:
    status: int  # 200 or 304
    body: bytes
    etag: str | None


class FlagHttp:
    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._ssl = ssl.create_default_context() if self._https else None
        self._headers = {"X-API-Key": api_key, "User-Agent": USER_AGENT}

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def fetch_config(self, etag: str | None, timeout: float) -> Fetched:
        headers = (
            {"Accept": "application/json"} if etag is None else {"Accept": "application/json", "If-None-Match": etag}
        )
        status, body, answer_headers = self._call("GET", CONFIG_PATH, None, headers, timeout)
        if status not in (200, 304):
            raise FlagHttpError(f"GET {CONFIG_PATH} answered {status}: {body[:200]!r}", status)
        return Fetched(status, body, answer_headers.get("etag"))

    def post_json(self, path: str, payload: dict[str, Any], timeout: float) -> tuple[int, Any]:
        data = json.dumps(payload).encode()
        status, body, _ = self._call("POST", path, data, {"Content-Type": "application/json"}, timeout)
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

    def stream(self, timeout: float) -> tuple[socket.socket, http.client.HTTPResponse]:
        """Open the stream; the subscription is live once this returns (its headers arrived). The socket
        is returned to stop the stream from another thread: the connection lets go of it once the
        response says it will close."""
        conn = self.connect(timeout)
        try:
            conn.request("GET", self._prefix + STREAM_PATH, headers={**self._headers, "Accept": "text/event-stream"})
            sock = conn.sock
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            raise
        if resp.status != 200 or sock is None:
            resp.close()
            conn.close()
            raise FlagHttpError(f"GET {STREAM_PATH} answered {resp.status}", resp.status)
        return sock, resp

    def _call(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes, dict[str, str]]:
        conn = self.connect(timeout)
        try:
            conn.request(method, self._prefix + path, body=body, headers={**self._headers, **headers})
            resp = conn.getresponse()
            data = resp.read(MAX_DOCUMENT_BYTES)
            return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()


def flag_path(key: str) -> str:
    return f"/api/v1/feature-flags/{quote(key, safe='')}/evaluate"


def experiment_path(key: str) -> str:
    return f"/api/v1/experiments/{quote(key, safe='')}/assign"


def events(resp: http.client.HTTPResponse) -> Iterator[tuple[str, str]]:
    """Server-sent events as (event name, data), per the HTML spec's parsing: `data:` lines joined by
    newlines, a blank line dispatches, `:` lines are comments (keep-alives)."""
    name, data = "message", list[str]()
    for raw in resp:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", list[str]()
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
