"""CORS for browser SDKs, per workspace (`allowed_origins` in its settings).

A preflight carries no API key, so it cannot name the workspace: the edge answers every preflight of a
tracking route, and checks the origin on the request itself. There, a workspace with `allowed_origins`
refuses any other Origin (403 ORIGIN_NOT_ALLOWED) and answers its own with Access-Control-Allow-Origin;
a workspace without the setting sends no CORS headers (browsers then cannot read the answer), and
requests without an Origin (servers, SDKs outside browsers) are never affected.
"""

from __future__ import annotations

from eventplane.errors import ApiError
from ingest.identity import IdentityConfig

ALLOW_HEADERS = "content-type, content-encoding, x-api-key, authorization, x-eventplane-identity, x-request-id"
PREFLIGHT_MAX_AGE = "600"


def preflight(origin: bytes) -> dict[str, str]:
    return {
        "access-control-allow-origin": origin.decode("latin-1"),
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": ALLOW_HEADERS,
        "access-control-max-age": PREFLIGHT_MAX_AGE,
        "vary": "origin",
    }


def allow(config: IdentityConfig, origin: bytes | None) -> dict[str, str]:
    """The CORS headers of the answer to a request from `origin`; raises when the workspace refuses it."""
    if origin is None or not config.origins:
        return {}
    if origin.rstrip(b"/").lower() not in config.origins:
        raise ApiError(
            403,
            "ORIGIN_NOT_ALLOWED",
            f"Origin {origin.decode('latin-1')!r} is not in this workspace's allowed_origins setting",
            {"origin": origin.decode("latin-1")},
        )
    return {"access-control-allow-origin": origin.decode("latin-1"), "vary": "origin"}
