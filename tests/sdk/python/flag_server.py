"""A small flag edge on a real socket (stdlib http.server, a thread per connection) for the SDK's flag
tests: the config document with its ETag (304 when unchanged), the event stream, the remote evaluate and
assign calls, and the tracking batch endpoint (to see `$exposure` events). Everything is recorded."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORKSPACE = "00000000-0000-4000-8000-000000000001"


@dataclass
class Behaviour:
    config_status: int = 200  # 200: serve the document; else answer this status
    stream: bool = True  # False: the stream answers 404 (an edge without it)
    remote_delay: float = 0.0
    remote_status: int = 200
    flag_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    assign_answers: dict[str, dict[str, Any]] = field(default_factory=dict)


class FlagServer:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.version = 0
        self.document: dict[str, Any] | None = None
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []  # method, path, headers, body
        self.config_answers: list[int] = []
        self.events: list[dict[str, Any]] = []
        self.stream_connections = 0
        self._changed = threading.Condition()
        self._drop_streams = 0  # bumped to end every open stream
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def publish(self, flags: list[dict[str, Any]] = (), experiments: list[dict[str, Any]] = ()) -> int:  # type: ignore[assignment]
        """A new document version, pushed to connected streams."""
        with self._changed:
            self.version += 1
            self.document = {
                "workspace_id": WORKSPACE, "version": self.version, "generated_at": "2026-12-01T00:00:00Z",
                "flags": list(flags), "experiments": list(experiments),
            }  # fmt: skip
            self._changed.notify_all()
            return self.version

    def drop_streams(self) -> None:
        with self._changed:
            self._drop_streams += 1
            self._changed.notify_all()

    @property
    def etag(self) -> str:
        return f'"{WORKSPACE}:{self.version}"'

    def paths(self, method: str = "POST") -> list[str]:
        return [p for m, p, _, _ in self.requests if m == method]

    def wait_for(self, condition: Any, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
            return True

    def notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def stream_documents(self, wfile: Any) -> None:
        with self._changed:
            self.stream_connections += 1
            sent, dropped = -1, self._drop_streams
            self._changed.notify_all()
        while True:
            with self._changed:
                self._changed.wait_for(partial(self._news, sent, dropped), 0.5)
                if self._drop_streams != dropped:
                    return
                doc = self.document if self.version != sent else None
                sent = self.version
            chunk = b": keep-alive\n\n"
            if doc is not None:
                chunk = b"event: config\ndata: " + json.dumps(doc).encode() + b"\n\n"
            wfile.write(chunk)
            wfile.flush()

    def _news(self, sent: int, dropped: int) -> bool:
        return self.version != sent or self._drop_streams != dropped

    @contextmanager
    def running(self) -> Iterator[FlagServer]:
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.drop_streams()
            self._server.shutdown()
            self._server.server_close()


def _handler(server: FlagServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, body: Any) -> None:
            with server._changed:
                server.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                server._changed.notify_all()

        def do_GET(self) -> None:
            self._record(None)
            behaviour = server.behaviour
            if self.path == "/api/v1/sdk/config/stream":
                if not behaviour.stream:
                    return self._reply(404, {"error": {"code": "NOT_FOUND", "message": "no stream"}})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                with suppress(OSError):
                    server.stream_documents(self.wfile)
                return None
            if self.path != "/api/v1/sdk/config":
                return self._reply(404)
            if behaviour.config_status != 200 or server.document is None:
                status = behaviour.config_status if behaviour.config_status != 200 else 503
                server.config_answers.append(status)
                return self._reply(status, {"error": {"code": "UNAVAILABLE", "message": "no config"}})
            if self.headers.get("If-None-Match") == server.etag:
                server.config_answers.append(304)
                self.send_response(304)
                self.send_header("ETag", server.etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            server.config_answers.append(200)
            return self._reply(200, server.document, {"ETag": server.etag})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            body: Any = json.loads(raw) if raw else None
            self._record(body)
            behaviour = server.behaviour
            if self.path == "/api/v1/tracking/batch":
                with server._changed:
                    server.events.extend(body["events"])
                    server._changed.notify_all()
                return self._reply(202, {"accepted": len(body["events"])})
            time.sleep(behaviour.remote_delay)
            if behaviour.remote_status != 200:
                return self._reply(behaviour.remote_status, {"error": {"code": "BOOM", "message": "failing"}})
            parts = self.path.split("/")  # /api/v1/{feature-flags|experiments}/{key}/{evaluate|assign}
            answers = behaviour.flag_answers if parts[3] == "feature-flags" else behaviour.assign_answers
            if parts[4] not in answers:
                return self._reply(404, {"error": {"code": "FLAG_NOT_FOUND", "message": "no such flag"}})
            return self._reply(200, answers[parts[4]])

    return Handler
