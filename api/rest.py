"""Reading requests and writing responses: JSON bodies through msgspec, query parameters, cursors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api.state import services
from api.wire import Page
from eventplane.errors import ApiError, validation

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_FIELD = re.compile(r"field `([^`]*)`")
# Query values in exactly the forms /openapi.json documents (integer, format: uuid, format: date).
_INT = re.compile(r"-?[0-9]{1,9}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


_decoders: dict[Any, Any] = {}


def _decoder(type_: type[T]) -> msgspec.json.Decoder[T]:
    """One decoder per request type, built on first use and kept."""
    decoder: msgspec.json.Decoder[T] | None = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    return decoder


def validation_error(exc: msgspec.ValidationError) -> ApiError:
    """A 400 naming the field path and the rule that failed, from msgspec's message."""
    message = str(exc)
    path = _PATH.search(message)
    field = _FIELD.search(message)
    where = path.group(1) if path else (field.group(1) if field else None)
    rule = _PATH.sub("", message)
    return ApiError(400, "VALIDATION_ERROR", message, {"field": where or None, "rule": rule})


async def _read(request: Request) -> bytes:
    limit = services(request).settings.api_max_body_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"Request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def body(request: Request, type_: type[T]) -> T:
    """The request body decoded and validated as `type_` (an empty body counts as `{}`)."""
    raw = await _read(request)
    try:
        return _decoder(type_).decode(raw if raw.strip() else b"{}")
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError:
        raise validation("Request body is not valid JSON") from None


async def optional_body(request: Request, type_: type[T]) -> T | None:
    """Like `body`, but None when the request has no body."""
    raw = await _read(request)
    if not raw.strip():
        return None
    try:
        return _decoder(type_).decode(raw)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError:
        raise validation("Request body is not valid JSON") from None


def convert(row: Any, type_: type[T]) -> T:
    """A database row as a wire type (the row must exist: callers check for None when it may not)."""
    assert row is not None
    return msgspec.convert(dict(row), type_)


def reply(obj: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(obj), status_code=status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:  # present but empty (`?limit=`) is not a number: 400, as the document says
        return default
    if not _INT.fullmatch(raw):  # int() would also take " 5", "1_0" and non-ASCII digits
        raise validation(f"'{name}' must be an integer", name)
    value = int(raw)
    if not lo <= value <= hi:
        raise validation(f"'{name}' must be between {lo} and {hi}", name)
    return value


def query_uuid(request: Request, name: str) -> uuid.UUID | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _UUID.fullmatch(raw):  # uuid.UUID would also take braces, "urn:uuid:" and bare hex
        raise validation(f"'{name}' must be a UUID", name)
    return uuid.UUID(raw)


def query_date(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        # Only YYYY-MM-DD (the document's `format: date`); fromisoformat also takes 20261122 and 2026-W47-1.
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise validation(f"'{name}' must be a date (YYYY-MM-DD)", name) from None


def utc(value: dt.datetime | None, name: str) -> dt.datetime | None:
    """An aware time in UTC, as Postgres receives it; a 400 when that is outside years 1-9999
    (`0001-01-01T00:00:00+14:00` is a valid RFC 3339 time whose UTC form Python cannot hold)."""
    if value is None:
        return None
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise validation(f"'{name}' is outside the years 1-9999 in UTC", name) from None


def path_uuid(request: Request, name: str) -> uuid.UUID:
    value = request.path_params[name]
    assert isinstance(value, uuid.UUID), "routes declare ids with the :uuid convertor"
    return value


# Cursors ---------------------------------------------------------------------------------------------
# A cursor is the (created_at, id) of the last item returned, opaque to clients; lists are ordered by it.
Cursor = tuple[dt.datetime, uuid.UUID]


def page_limit(request: Request) -> int:
    return query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


def encode_cursor(created_at: dt.datetime, id_: uuid.UUID | str) -> str:
    raw = _encoder.encode([created_at.isoformat(), str(id_)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor(request: Request) -> Cursor | None:
    position = text_cursor(request)
    try:
        return None if position is None else (position[0], uuid.UUID(position[1]))
    except ValueError:
        raise validation("'cursor' is not one this API returned", "cursor") from None


def text_cursor(request: Request) -> tuple[dt.datetime, str] | None:
    """A cursor whose id is any text (events are keyed by message_id, not a UUID)."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        stamp, id_ = msgspec.json.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), type=tuple[str, str])
        created_at = dt.datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError(stamp)  # this API's cursors carry a zone; a naive time would be read as local
        return created_at.astimezone(dt.UTC), id_
    except (binascii.Error, msgspec.DecodeError, ValueError, OverflowError):
        raise validation("'cursor' is not one this API returned", "cursor") from None


def after(position: Cursor | None) -> tuple[dt.datetime, uuid.UUID]:
    """SQL arguments for `(created_at, id) > ($n, $n+1)`: the start of time when there is no cursor."""
    return position or (dt.datetime.min.replace(tzinfo=dt.UTC), uuid.UUID(int=0))


def reply_page(rows: list[Any], limit: int, out: Callable[[Any], Any]) -> Response:
    """A list reply from `limit + 1` fetched rows: the first `limit`, as `out` makes them, and the cursor
    to the next page."""
    return reply(Page(items=[out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit)))


def next_cursor(rows: list[Any], limit: int, stamp: str = "created_at") -> str | None:
    """Given `limit + 1` fetched rows, the cursor to the next page (None on the last page)."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last[stamp], last["id"])
