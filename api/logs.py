"""Keep secrets out of logs: invitation tokens travel in URL paths, which access logs print.

Any path a client sends is logged, also one that matches no route, so redaction does not trust the
route table: every segment after an `invite(s)`/`invitation(s)` segment (any case, any position) but the
route words `accept` and `pending`, and anything shaped like one of our secrets (`epi_`, `ept_`,
`ep_live_`, and the mailed `epv_`, `epr_`, `epe_` that the dashboard's pages receive in their query)
anywhere in the path or query, becomes ***.
"""

from __future__ import annotations

import logging
import re

_INVITES = re.compile(r"(?i)/invit(?:e|ation)s?(?=/)")
_ROUTE_WORDS = frozenset({"", "accept", "pending"})
# Mailed tokens (epv_ verify, epr_ reset, epe_ email change) arrive in the query of the dashboard's pages.
_SECRET_SHAPED = re.compile(r"(?i)(ep_live_|ept_|epi_|epv_|epr_|epe_)[^/?#&\s]+")


def redact(path: str) -> str:
    """The path (with its query, if any) with every invitation token, or anything shaped like a secret, as ***."""
    route, mark, query = path.partition("?")
    found = _INVITES.search(route)
    if found:
        tail = [seg if seg.lower() in _ROUTE_WORDS else "***" for seg in route[found.end() :].split("/")]
        route = route[: found.end()] + "/".join(tail)
    return _SECRET_SHAPED.sub(r"\1***", route + mark + query)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
