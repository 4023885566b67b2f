"""Org tokens: long-lived credentials for automation, scoped to org workspaces (`workspaces:read`,
`workspaces:write`, `workspaces:credentials`). The plaintext is shown once, only its SHA-256 is stored;
revoking one stops it at once; `last_used_at` is set on every use. They work only on the org endpoints."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api import org_access, org_audit
from api import org_permissions as op
from api.errors import not_found
from api.org_wire import OrgTokenCreatedOut, OrgTokenIn, OrgTokenOut
from api.rest import after, body, cursor, no_content, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import services
from api.wire import Page

_COLUMNS = "id, org_id, name, token_prefix, scopes, created_at, last_used_at, revoked_at"
_PREFIX_SHOWN = 12


def out(row: Any) -> OrgTokenOut:
    return OrgTokenOut(**{f: row[f] for f in OrgTokenOut.__struct_fields__})


async def create(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    actor = await org_access.caller(request, org_id, op.ORG_TOKENS)
    data = await body(request, OrgTokenIn)
    token = org_access.new_token()
    scopes = sorted(set(data.scopes))
    async with services(request).pool.acquire() as conn, conn.transaction():
        row: Any = await conn.fetchrow(
            "INSERT INTO org_tokens (org_id, name, token_hash, token_prefix, scopes, created_by) "
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            org_id,
            data.name,
            org_access.token_hash(token),
            token[:_PREFIX_SHOWN],
            scopes,
            actor.user_id,
        )
        await org_audit.record(conn, actor, "create", "org_token", str(row["id"]), None,
                               {"name": data.name, "scopes": scopes})  # fmt: skip
    return reply(OrgTokenCreatedOut(**{f: row[f] for f in OrgTokenOut.__struct_fields__}, token=token), 201)


async def list_tokens(request: Request) -> Response:
    org_id = path_uuid(request, "org_id")
    await org_access.caller(request, org_id, op.ORG_TOKENS)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        f"SELECT {_COLUMNS} FROM org_tokens WHERE org_id = $1 AND (created_at, id) > ($2, $3) "
        "ORDER BY created_at, id LIMIT $4",
        org_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def revoke(request: Request) -> Response:
    org_id, token_id = path_uuid(request, "org_id"), path_uuid(request, "token_id")
    actor = await org_access.caller(request, org_id, op.ORG_TOKENS)
    async with services(request).pool.acquire() as conn, conn.transaction():
        name = await conn.fetchval(
            "UPDATE org_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND org_id = $2 "
            "RETURNING name",
            token_id,
            org_id,
        )
        if name is None:
            raise not_found("org token")
        await org_audit.record(conn, actor, "delete", "org_token", str(token_id), {"name": name}, None)
    return no_content()


_E = (400, 401, 403, 404)
TOKENS = "/api/v1/orgs/{org_id:uuid}/tokens"
ENDPOINTS = [
    Endpoint("POST", TOKENS, create, "Create an org token; the token is shown once", OrgTokenIn, OrgTokenCreatedOut,
             201, errors=_E),
    Endpoint("GET", TOKENS, list_tokens, "The org's tokens (no secrets)", None, Page[OrgTokenOut],
             query=("limit", "cursor"), errors=_E),
    Endpoint("DELETE", f"{TOKENS}/{{token_id:uuid}}", revoke, "Revoke an org token (at once)", None, None, 204,
             errors=_E),
]  # fmt: skip
