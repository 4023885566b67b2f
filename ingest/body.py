"""Reading a request body within its size limit, gunzipping it when asked (limit applied after)."""

from __future__ import annotations

import asyncio
import zlib

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


async def read_body(receive: Receive, *, limit: int, content_length: int | None, gzipped: bool, within: float) -> bytes:
    if content_length is not None and content_length > limit:
        raise too_large(limit)  # refused before reading a byte
    try:
        async with asyncio.timeout(within):  # a client trickling its body may not hold a slot forever
            return await _read(receive, limit, gzipped)
    except TimeoutError:
        raise ApiError(408, "REQUEST_TIMEOUT", f"The body did not arrive within {within:g} s") from None


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
