"""CORS for the routes browsers call (tracking, Segment, flags, OFREP).

SDK keys are meant to sit in web pages (a `track:write` or `read` key), and these routes use no cookies,
so any origin may call them: a preflight is answered at once, without a key, and responses to a request
that names an Origin allow it to read the body and the headers an SDK needs (request id, Retry-After,
ETag). Credentials (cookies) are never allowed.
"""

from __future__ import annotations

from ingest.asgi import Message, Send

ALLOW_METHODS = b"GET, POST, OPTIONS"
ALLOW_HEADERS = b"content-type, content-encoding, x-api-key, authorization, x-request-id, if-none-match"
EXPOSE_HEADERS = b"x-request-id, retry-after, etag"
MAX_AGE = b"86400"  # browsers cap it lower (Chromium: 2 h); one preflight a day at most otherwise


def is_preflight(method: str, origin: bytes | None) -> bool:
    return method == "OPTIONS" and origin is not None


async def preflight(send: Send, origin: bytes) -> None:
    headers = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", ALLOW_METHODS),
        (b"access-control-allow-headers", ALLOW_HEADERS),
        (b"access-control-max-age", MAX_AGE),
        (b"vary", b"origin"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def allowing(send: Send, origin: bytes) -> Send:
    """`send`, with the response headers that let a page at `origin` read the response."""

    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                *message.get("headers", ()),
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", EXPOSE_HEADERS),
                (b"vary", b"origin"),
            ]
        await send(message)

    return send_with_cors
