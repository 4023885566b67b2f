"""The OpenFeature Remote Evaluation Protocol (open-feature/protocol, service/openapi.yaml), so any
OpenFeature SDK with an OFREP provider evaluates EventPlane flags unchanged.

The OFREP context's `targetingKey` is our `user_id`, an `anonymous_id` entry is ours too, and every other
entry is an attribute. Errors use OFREP's shapes, not the edge's: `{"key", "errorCode", "errorDetails"}`
(400 PARSE_ERROR / INVALID_CONTEXT / TARGETING_KEY_MISSING, 404 FLAG_NOT_FOUND), `{"errorDetails"}` for 5xx.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec
from experimentation_sdk import evaluation
from experimentation_sdk.evaluation import FlagResult

from eventplane.errors import ApiError
from ingest.configcache import Cached

_any = msgspec.json.Decoder()
_encode = msgspec.json.encode


class Failure(Exception):
    """An OFREP error answer."""

    def __init__(self, status: int, key: str | None, code: str, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.key = key
        self.code = code
        self.details = details

    def item(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.key is None else {"key": self.key}
        return {**out, "errorCode": self.code, "errorDetails": self.details}

    def body(self) -> bytes:
        return _encode(self.item())


def general(error: ApiError) -> bytes:
    return _encode({"errorDetails": error.message})


def context_of(body: bytes, key: str | None) -> dict[str, Any]:
    """The request's `context` object ({} when the body or the context is absent)."""
    if not body.strip():
        return {}
    try:
        doc = _any.decode(body)
    except msgspec.DecodeError as exc:
        raise Failure(400, key, "PARSE_ERROR", f"Body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Failure(400, key, "PARSE_ERROR", 'Body must be a JSON object: {"context": {...}}')
    context = doc.get("context")
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise Failure(400, key, "INVALID_CONTEXT", "context must be a JSON object")
    for name in ("targetingKey", "anonymous_id"):
        if name in context and not isinstance(context[name], str):
            raise Failure(400, key, "INVALID_CONTEXT", f"context.{name} must be a string")
    return context


def ours(context: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in context.items() if k not in ("targetingKey", "anonymous_id")}
    user_id, anonymous_id = context.get("targetingKey"), context.get("anonymous_id")
    return {"user_id": user_id, "anonymous_id": anonymous_id, "attributes": attributes}


def _resolve(cached: Cached, flag: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    key: str = flag["key"]
    result: FlagResult = evaluation.evaluate_flag(flag, context)
    if result.error_code is not None:
        raise Failure(400, key, result.error_code, "This flag needs a targetingKey to decide for a unit")
    out: dict[str, Any] = {
        "key": key,
        "reason": result.reason,
        "variant": result.variant or ("on" if result.enabled else "off"),
        "metadata": {"enabled": result.enabled, "configVersion": cached.version},
    }
    if result.value is not None:  # no value: the caller's code default applies (OFREP ADR 0006)
        out["value"] = result.value
    return out


def evaluate_one(cached: Cached, key: str, body: bytes) -> bytes:
    context = ours(context_of(body, key))
    flag = cached.flags.get(key)
    if flag is None:
        raise Failure(404, key, "FLAG_NOT_FOUND", f"No feature flag '{key}' in this workspace")
    return _encode(_resolve(cached, flag, context))


@dataclass(frozen=True)
class Bulk:
    body: bytes
    etag: str


def evaluate_bulk(cached: Cached, body: bytes) -> Bulk:
    """Every flag for one context. The ETag covers the config version and the context, so a client
    that asks again with the same context while nothing changed gets 304."""
    raw = context_of(body, None)
    context = ours(raw)
    items: list[dict[str, Any]] = []
    for flag in cached.flags.values():
        try:
            items.append(_resolve(cached, flag, context))
        except Failure as failure:
            items.append(failure.item())
    digest = hashlib.sha256(msgspec.json.encode(raw, order="sorted")).hexdigest()[:16]
    return Bulk(_encode({"flags": items}), f'"{cached.config.workspace_id}:{cached.version}:{digest}"')
