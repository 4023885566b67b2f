"""The one API-key authenticator, shared by the edge and the api.

Where the key is read from (X-API-Key, Bearer, Basic with the key as user name), its format and
checksum (no lookup for a malformed key), the lookup (the caller's: the edge's cache, the api's
Postgres), and the rules in order: usable (active, not revoked, not expired), workspace not archived,
plan with API access, scope. A refusal is a `KeyRefused`, an ApiError with the stable code.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventplane import keyformat, scopes
from eventplane.apikeys import KeyInfo
from eventplane.errors import ApiError

Lookup = Callable[[str], Awaitable[KeyInfo]]  # key hash -> what it grants


class KeyRefused(ApiError):
    """A key (or its absence) that does not grant the request."""


@dataclass(frozen=True, slots=True)
class Grant:
    key_id: str
    workspace_id: str
    scopes: frozenset[str]
    info: KeyInfo


def extract(x_api_key: str | None, authorization: str | None) -> str | None:
    """`X-API-Key: <key>`, `Authorization: Bearer <key>`, or Basic auth with the key as user name (how
    Segment- and RudderStack-style SDKs send a write key). None: no credential; "": an unusable one."""
    if x_api_key:
        return x_api_key.strip()
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return ""
        return decoded.partition(":")[0]
    return ""


def is_key(credential: str) -> bool:
    """Whether a Bearer credential is meant as an API key (rather than, on the api, a session token)."""
    return credential.startswith(keyformat.PREFIX)


def _refused(status: int, code: str, message: str, details: object = None) -> KeyRefused:
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return KeyRefused(status, code, message, details, headers)


def missing() -> KeyRefused:
    return _refused(
        401, "AUTH_ERROR", "Missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
    )


async def authenticate(credential: str | None, lookup: Lookup, scope: str | None = None) -> Grant:
    """The grant of `credential`, which must hold `scope` when one is given; raises KeyRefused."""
    if not credential:
        raise missing()
    if not keyformat.well_formed(credential):
        raise _refused(401, "AUTH_ERROR", "API key is malformed (check that it was copied whole)")
    return check(await lookup(keyformat.hash_key(credential)), scope)


def check(info: KeyInfo, scope: str | None = None) -> Grant:
    if not info.usable(time.time()):
        raise _refused(401, "AUTH_ERROR", "API key is unknown, revoked or expired")
    if not info.workspace_active:
        raise _refused(403, "WORKSPACE_ARCHIVED", "This key's workspace is archived; restore it to use its keys")
    if not info.plan_limits.api_access:
        raise _refused(
            403,
            "PLAN_SUSPENDED",
            f"This workspace's plan ('{info.plan}') does not include API access; "
            "contact the operator of this EventPlane to change the plan",
            {"plan": info.plan},
        )
    if scope is not None and scope not in info.scopes:
        bundles = ", ".join(name for name, granted in scopes.BUNDLES.items() if scope in granted)
        raise _refused(
            403,
            "INSUFFICIENT_SCOPE",
            f"API key lacks the scope '{scope}' (or a bundle containing it: {bundles})",
            {"required_scope": scope},
        )
    return Grant(info.key_id, info.workspace_id, info.scopes, info)
