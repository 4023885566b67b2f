"""Every error the API answers with, mapped to the one shape in one place:
{"error": {"code", "message", "details"}}. Handlers raise `eventplane.errors.ApiError`; this module turns
it, routing errors and unexpected failures into responses."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.logs import redact
from api.rest import validation_error
from eventplane.errors import TRANSIENT_ERRORS, ApiError

log = logging.getLogger("eventplane.api")

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"No such {what}")


def forbidden(message: str, details: Any = None) -> ApiError:
    return ApiError(403, "FORBIDDEN", message, details)


def conflict(message: str, details: Any = None) -> ApiError:
    return ApiError(409, "CONFLICT", message, details)


def auth_error(message: str) -> ApiError:
    return ApiError(401, "AUTH_ERROR", message, None, {"www-authenticate": "Bearer"})


def plan_limit(limit: str, maximum: int) -> ApiError:
    return ApiError(403, "PLAN_LIMIT", f"The workspace's plan allows at most {maximum} ({limit})",
                    {"limit": limit, "max": maximum})  # fmt: skip


def _respond(error: ApiError) -> Response:
    body = error.body() if error.details is not None else _with_null_details(error)
    return Response(body, status_code=error.status, media_type="application/json", headers=error.headers)


def _with_null_details(error: ApiError) -> bytes:
    # eventplane.errors omits null details (the edge's choice); here every error carries the key.
    return msgspec.json.encode({"error": {"code": error.code, "message": error.message, "details": None}})


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _respond(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = "No such route" if exc.status_code == 404 else str(exc.detail)
    return _respond(ApiError(exc.status_code, code, message, None, dict(exc.headers or {})))


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, msgspec.ValidationError)
    return _respond(validation_error(exc))


async def on_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable on %s %s: %s", request.method, redact(request.url.path), type(exc).__name__)
    return _respond(ApiError(503, "UNAVAILABLE", "A backing service is unavailable; retry shortly", None,
                             {"retry-after": "5"}))  # fmt: skip


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, redact(request.url.path))
    return _respond(ApiError(500, "INTERNAL_ERROR", "Unexpected error"))


HANDLERS: dict[Any, Any] = {
    ApiError: on_api_error,
    HTTPException: on_http_error,
    msgspec.ValidationError: on_validation_error,
    **dict.fromkeys(TRANSIENT_ERRORS, on_unavailable),
    Exception: on_unexpected,
}
