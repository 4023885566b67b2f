"""What the SDK hands to `on_error`: one exception type for every loss and every failed delivery."""

from __future__ import annotations

from typing import Any


class DeliveryError(Exception):
    """Events were dropped, or a send attempt failed.

    `reason` is the drop reason (`queue_full`, `queue_full_oldest`, `too_large`, `invalid`, `rejected`,
    `retry_exhausted`, `shutdown`, `closed`); `count` how many events it concerns; `status`, `code` and
    `details` come from the server's error body when there was one.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        count: int = 1,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.count = count
        self.status = status
        self.code = code
        self.details = details

    def __repr__(self) -> str:
        return f"DeliveryError(reason={self.reason!r}, count={self.count}, status={self.status}, code={self.code!r})"
