"""Reading a request body within its size limit, gunzipping it when asked (limit applied after)."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping
from typing import Any

from eventplane.errors import ApiError
from ingest.asgi import Receive


class ClientDisconnected(Exception):
    """The client went away before sending its whole body; there is nobody to answer."""


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "PAYLOAD_TOO_LARGE",
        f"Request body is over {limit} bytes (after decompression). Send fewer events per request.",
        {"limit": limit},
    )


class Deadlines:
    """How long a body may take to arrive, for every request at once.

    A sweep twice a second cancels reads that overran. That costs each request two dict operations,
    where an asyncio.timeout per request costs a timer-heap push and removal on the hot path.
    """

    def __init__(self, within: float) -> None:
        self.within = within
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()

    def begin(self, task: asyncio.Task[Any]) -> None:
        self._reading[task] = time.monotonic() + self.within

    def end(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching `task`; True if it was cancelled for overrunning."""
        self._reading.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            return True
        return False

    async def sweep(self) -> None:
        while True:
            await asyncio.sleep(min(0.5, self.within / 2))
            now = time.monotonic()
            for task, deadline in list(self._reading.items()):
                if deadline < now:
                    del self._reading[task]
                    self._expired.add(task)
                    task.cancel()


async def read_body(
    receive: Receive, *, limit: int, content_length: int | None, gzipped: bool, deadlines: Deadlines
) -> bytes:
    if content_length is not None and content_length > limit:
        raise too_large(limit)  # refused before reading a byte
    task = asyncio.current_task()
    assert task is not None
    deadlines.begin(task)  # a client trickling its body may not hold a slot forever
    try:
        body = await _read(receive, limit, gzipped)
    except asyncio.CancelledError:
        if deadlines.end(task):
            raise ApiError(408, "REQUEST_TIMEOUT", f"The body did not arrive within {deadlines.within:g} s") from None
        raise
    deadlines.end(task)
    return body


async def _read(receive: Receive, limit: int, gzipped: bool) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    parts: list[bytes] = []
    raw_size = size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        raw_size += len(chunk)
        if raw_size > limit:
            raise too_large(limit)
        if inflater is not None:
            chunk = _inflate(inflater, chunk, limit - size, limit)
        size += len(chunk)
        parts.append(chunk)
    if inflater is not None and not inflater.eof:
        raise ApiError(400, "INVALID_GZIP", "Gzip body is truncated")
    return b"".join(parts)


def _inflate(inflater: zlib._Decompress, chunk: bytes, room: int, limit: int) -> bytes:
    """Decompress at most `room` bytes; a body that would inflate past it is refused (gzip bombs)."""
    try:
        out = inflater.decompress(chunk, room + 1)
    except zlib.error:
        raise ApiError(400, "INVALID_GZIP", "Body is not valid gzip data") from None
    if len(out) > room:
        raise too_large(limit)
    return out


def content_length(headers: Mapping[bytes, bytes]) -> int | None:
    raw = headers.get(b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "INVALID_HEADER", "Content-Length is not a number") from None
