"""Keep secrets out of logs: invitation tokens travel in URL paths, which access logs print."""

from __future__ import annotations

import logging
import re

_TOKEN_IN_PATH = re.compile(r"(/invit(?:e|ation)s/)[^/?\s]+(/accept)")


def redact(path: str) -> str:
    """The path with any invitation token replaced by ***."""
    return _TOKEN_IN_PATH.sub(r"\1***\2", path)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
