"""/openapi.json documents every route, from the same msgspec types that validate requests."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from api import web

UNDOCUMENTED = {"/healthz", "/readyz", "/openapi.json", "/metrics"}  # operational, not part of the API
UNDOCUMENTED |= {*web.APP_PATHS, "/static/{path:path}"}  # the dashboard's pages and files (api/web.py)


async def test_every_route_is_documented(api: httpx.AsyncClient, api_app: Starlette) -> None:
    r = await api.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path), method)
        for route in api_app.routes
        if isinstance(route, Route) and route.path not in UNDOCUMENTED
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == served
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_request_schemas_are_the_validating_types(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    workspace_in = schemas["WorkspaceIn"]
    assert workspace_in["additionalProperties"] is False
    assert workspace_in["properties"]["slug"]["pattern"] == "^[a-z0-9-]+$"
    assert workspace_in["properties"]["name"]["maxLength"] == 100
    assert set(workspace_in["required"]) == {"name", "slug"}
    create = doc["paths"]["/api/v1/workspaces"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WorkspaceIn"
    }
    assert "201" in create["responses"] and "409" in create["responses"]
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "details"}
