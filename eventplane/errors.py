"""Errors shared by every process: the one error shape both HTTP processes answer with
({"error": {"code", "message", "details"}}), and the one list of transient exceptions."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from redis.exceptions import RedisError


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


# "Not now": Postgres, Redis or the network is down, busy or slow. Whoever catches these retries later
# (workers) or answers 503 (the edge, the api); never a reason to drop or refuse data. Any RedisError
# counts: besides lost connections, Redis answers LOADING, READONLY (failover) and OOM when it cannot
# take writes, all of which pass.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError
    TimeoutError,  # asyncio.TimeoutError too, and asyncpg's command_timeout
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InterfaceError,  # includes ConnectionDoesNotExistError (the connection was lost)
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.OperatorInterventionError,  # class 57: admin shutdown, crash shutdown, query canceled
    asyncpg.InsufficientResourcesError,  # class 53: disk full, out of memory
    RedisError,
)
