"""The one error shape both HTTP processes answer with: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

import orjson


class ApiError(Exception):
    """A request we refuse, with a stable machine code and a message a person can act on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps({"error": {"code": self.code, "message": self.message, "details": self.details}})


def validation(message: str, path: str | None = None, code: str = "VALIDATION_ERROR") -> ApiError:
    return ApiError(400, code, message, {"field": path} if path else None)


def unavailable(code: str, message: str, retry_after: int) -> ApiError:
    return ApiError(503, code, message, headers={"retry-after": str(retry_after)})
