"""`GET .../events/live`: a server-sent-events stream of the workspace's events as workers store them.

Each stream subscribes to its workspace's channel (eventplane/live.py) and keeps what arrives in a queue
of `live_queue_events`; a client that reads slower than events arrive fills it and is then sent a final
`event: dropped` (code `SLOW_CLIENT`; `LIVE_UNAVAILABLE` when Redis is lost) and disconnected, so a
stalled browser costs a bounded amount of memory. A workspace has at most `live_max_streams` streams open
at once, counted by Redis across every api process (the subscribers of the channel): one more is 429
`TOO_MANY_STREAMS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
from redis.asyncio.client import PubSub
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api import access, event_query
from api import permissions as p
from api.rest import path_uuid
from api.routing import Endpoint
from api.state import services
from eventplane.errors import TRANSIENT_ERRORS, ApiError

HEARTBEAT_SECONDS = 15.0  # a comment line this often keeps proxies from closing an idle stream
POLL_SECONDS = 1.0
_events = msgspec.json.Decoder(list[msgspec.Raw])
_fields = msgspec.json.Decoder(dict[str, object])
_DROPPED = (b'event: dropped\ndata: {"code": "SLOW_CLIENT", "message": "This client read events slower than they '
            b'arrived; reconnect, or narrow the filters"}\n\n')  # fmt: skip
_LOST = (b'event: dropped\ndata: {"code": "LIVE_UNAVAILABLE", "message": "The server lost its feed of stored events; '
         b'reconnect in a few seconds"}\n\n')  # fmt: skip
_FINAL = (_DROPPED, _LOST)


async def live(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await access.workspace(request, workspace_id, p.EVENTS_READ)
    filters = event_query.parse(request)
    svc = services(request)
    channel = svc.keys.live_events(str(workspace_id))
    redis = await svc.data.redis(workspace_id)  # the workers of the workspace's instance publish there
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        [(_, streams)] = await redis.pubsub_numsub(channel)
    except BaseException:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        raise
    if streams > svc.settings.live_max_streams:  # subscribed first, then counted: a race refuses, never overshoots
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        cap = svc.settings.live_max_streams
        raise ApiError(429, "TOO_MANY_STREAMS", f"This workspace has {cap} live streams open already; close one "
                       "and retry", {"limit": cap})  # fmt: skip
    stream = _stream(pubsub, filters, svc.settings.live_queue_events)
    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def _stream(pubsub: PubSub, filters: event_query.Filters, cap: int) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[bytes] = asyncio.Queue(cap)
    reader = asyncio.create_task(_read(pubsub, filters, queue))
    try:
        yield b": connected\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            yield item
            if item in _FINAL:
                return
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _read(pubsub: PubSub, filters: event_query.Filters, queue: asyncio.Queue[bytes]) -> None:
    """Published events into the queue as SSE frames, filtered; when the queue is full, or Redis is lost,
    empty it and leave only the final frame."""
    try:
        while True:
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            if message is None or message.get("type") != "message":
                continue
            for raw in _events.decode(message["data"]):
                if filters.matches(_fields.decode(raw)):
                    queue.put_nowait(b"event: event\ndata: " + bytes(raw) + b"\n\n")
    except asyncio.QueueFull:
        _end(queue, _DROPPED)
    except TRANSIENT_ERRORS:
        _end(queue, _LOST)


def _end(queue: asyncio.Queue[bytes], final: bytes) -> None:
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(final)


ENDPOINTS = [
    Endpoint("GET", "/api/v1/workspaces/{workspace_id:uuid}/events/live", live,
             "Server-sent events: the workspace's events as they are stored, filtered", None, None,
             auth="session_or_key", query=("event_type", "user_id", "anonymous_id", "from", "to", "property"),
             errors=(400, 401, 403, 404, 429)),
]  # fmt: skip
