"""/openapi.json, generated from the endpoint table and the msgspec types that validate requests."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from api.routing import Endpoint
from api.wire import ErrorOut

REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
_STATUS_TEXT = {400: "Invalid request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
                409: "Conflict", 410: "Gone", 429: "Rate limited"}  # fmt: skip
_FILTER_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*$"}
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    "cursor": {"type": "string"},
    "workspace_id": {"type": "string", "format": "uuid"},
    "org_id": {"type": "string", "format": "uuid"},
    "from": {"type": "string", "format": "date"},
    "to": {"type": "string", "format": "date"},
    "bucket_version": {"type": "integer", "minimum": 1},
    "entity_type": {"type": "string", "enum": ["feature_flag", "experiment"]},
    "entity_key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,99}$"},
    # The event filters (api/event_query.py).
    "event_type": _FILTER_TEXT,
    "user_id": _FILTER_TEXT,
    "anonymous_id": _FILTER_TEXT,
    "property": {"type": "string", "pattern": "^[A-Za-z0-9_.$-]{1,100}:[^\\u0000]{0,200}$"},
    "format": {"type": "string", "enum": ["ndjson", "csv"], "default": "ndjson"},
}
_REQUIRED_QUERY = {"org_id"}


def document(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    types = sorted({t for e in endpoints for t in (e.body, e.response) if t is not None} | {ErrorOut}, key=repr)
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    ref_of = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for e in endpoints:
        op = _operation(e, ref_of)
        while op["operationId"] in seen:  # an alias route: same handler, another path
            op["operationId"] += "_alias"
        seen.add(op["operationId"])
        paths.setdefault(_PARAM.sub(r"{\1}", e.path), {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "EventPlane management API", "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def _operation(e: Endpoint, ref_of: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": e.summary, "operationId": _operation_id(e)}
    params = [{"name": m.group(1), "in": "path", "required": True, "schema": _path_schema(m.group(2))}
              for m in _PARAM.finditer(e.path)]  # fmt: skip
    params += [{"name": q, "in": "query", "schema": _QUERY_SCHEMAS.get(q, {"type": "string"}),
                **({"required": True} if q in _REQUIRED_QUERY else {})} for q in e.query]  # fmt: skip
    if params:
        op["parameters"] = params
    if e.body is not None:
        required = any(f.required for f in msgspec.structs.fields(e.body))
        op["requestBody"] = {"required": required, "content": {"application/json": {"schema": ref_of[e.body]}}}
    ok: dict[str, Any] = {"description": "OK"}
    if e.response is not None:
        ok["content"] = {"application/json": {"schema": ref_of[e.response]}}
    error = {"content": {"application/json": {"schema": ref_of[ErrorOut]}}}
    op["responses"] = {str(e.status): ok} | {str(s): {"description": _STATUS_TEXT.get(s, "Error"), **error}
                                              for s in e.errors}  # fmt: skip
    if e.auth != "none":
        op["security"] = [{"session": []}] + ([{"apiKey": []}] if e.auth == "session_or_key" else [])
    return op


def _operation_id(e: Endpoint) -> str:
    module = e.handler.__module__.rpartition(".")[2]
    return f"{module}_{e.handler.__name__}"


def _path_schema(convertor: str | None) -> dict[str, str]:
    return {"type": "string", "format": "uuid"} if convertor == "uuid" else {"type": "string"}
