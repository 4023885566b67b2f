"""Org workspaces: a workspace seen from its org, provisioned and managed with org credentials (a member's
session or an org token, never a workspace's own key). Each has a public `key` and a `secret` (shown once,
stored as SHA-256) that a platform exchanges for a short-lived workspace access token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import api_keys, limits, org_access, org_audit, workspace_tokens, workspaces
from api import org_permissions as op
from api import workspace_config as api_workspace_config
from api.errors import auth_error, conflict, not_found
from api.org_wire import (
    AccessTokenIn,
    AccessTokenOut,
    OrgWorkspaceCreatedOut,
    OrgWorkspaceDetailOut,
    OrgWorkspaceIn,
    OrgWorkspaceOut,
    OrgWorkspacePatch,
    RotateSecretIn,
    SecretOut,
)
from api.rest import after, body, cursor, page_limit, path_uuid, reply, reply_page
from api.routing import Endpoint
from api.state import Services, services
from api.wire import KeyCreatedOut, KeyIn, Page
from eventplane import plans, scopes, tenants, workspace_config
from eventplane.errors import ApiError, validation

SECRET_PREFIX = "epws_"
BASE = "/api/v1/org-workspaces"
ID = f"{BASE}/{{workspace_id:uuid}}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def out(row: Any) -> OrgWorkspaceOut:
    return OrgWorkspaceOut(**_fields(row))


def _fields(row: Any) -> dict[str, Any]:
    return {"id": uuid.UUID(str(row["id"])), "org_id": uuid.UUID(str(row["org_id"])), "name": row["name"],
            "slug": row["slug"], "key": row["public_key"], "is_active": row["is_active"],
            "has_secret": row["secret_hash"] is not None, "created_at": row["created_at"],
            "updated_at": row["updated_at"]}  # fmt: skip


def _snapshot(row: Any) -> dict[str, Any]:
    return {"name": row["name"], "slug": row["slug"], "is_active": row["is_active"]}


async def create(request: Request) -> Response:
    workspaces.check_admin_token(request)  # as for POST /workspaces: an operator may reserve creating workspaces
    data = await body(request, OrgWorkspaceIn)
    try:
        actor = await org_access.caller(request, data.org_id, op.WORKSPACES_WRITE)
    except ApiError as exc:  # an org the caller cannot see is a bad field, not a missing route
        if exc.status == 404:
            raise ApiError(404, "NOT_FOUND", "No such org", {"field": "org_id"}) from None
        raise
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    slug = data.slug or f"ws-{secrets.token_hex(6)}"
    async with services(request).pool.acquire() as conn, conn.transaction():
        plan = await conn.fetchval("SELECT plan FROM orgs WHERE id = $1 FOR UPDATE", data.org_id)
        count = await conn.fetchval("SELECT count(*) FROM workspaces WHERE org_id = $1", data.org_id)
        cap = plans.max_workspaces(plan)
        if count >= cap:
            raise ApiError(403, "PLAN_LIMIT", f"The org's plan allows at most {cap} workspaces (max_workspaces)",
                           {"limit": "max_workspaces", "max": cap})  # fmt: skip
        try:
            made = await tenants.create_workspace(conn, name=data.name, slug=slug, plan=plan, org_id=data.org_id,
                                                  secret_hash=secret_hash(secret))  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise conflict(f"A workspace with slug '{slug}' exists already", {"field": "slug"}) from None
        row: Any = await conn.fetchrow("SELECT * FROM workspaces WHERE id = $1::uuid", made["id"])
        await org_audit.record(conn, actor, "create", "workspace", str(row["id"]), None, _snapshot(row), row["id"])
    return reply(OrgWorkspaceCreatedOut(**_fields(row), secret=secret), 201)


async def list_for_org(request: Request) -> Response:
    raw = request.query_params.get("org_id")
    try:
        org_id = uuid.UUID(raw or "")
    except ValueError:
        raise validation("'org_id' (a uuid) names the org whose workspaces to list", "org_id") from None
    await org_access.caller(request, org_id, op.WORKSPACES_READ)
    limit = page_limit(request)
    rows = await services(request).pool.fetch(
        "SELECT * FROM workspaces WHERE org_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4",
        org_id,
        *after(cursor(request)),
        limit + 1,
    )
    return reply_page(rows, limit, out)


async def _detail(svc: Services, conn: Any, row: Any, webhooks: list[dict[str, Any]] | None = None
                  ) -> OrgWorkspaceDetailOut:  # fmt: skip
    workspace_id = uuid.UUID(str(row["id"]))
    if webhooks is None:  # they live on the workspace's instance
        async with (await svc.data.pool(workspace_id)).acquire() as data:
            webhooks = await workspace_config.get_webhooks(data, workspace_id)
    return OrgWorkspaceDetailOut(**_fields(row), settings=await workspace_config.get_settings(conn, workspace_id),
                                 webhooks=webhooks,
                                 public_keys=await workspace_config.get_public_keys(conn, workspace_id))  # fmt: skip


async def get(request: Request) -> Response:
    _, row = await org_access.for_workspace(request, path_uuid(request, "workspace_id"), op.WORKSPACES_READ)
    svc = services(request)
    async with svc.pool.acquire() as conn:
        return reply(await _detail(svc, conn, row))


async def update(request: Request) -> Response:
    """Name, settings, webhook destinations, public keys: each given part replaced whole, in one transaction."""
    workspace_id = path_uuid(request, "workspace_id")
    actor, before = await org_access.for_workspace(request, workspace_id, op.WORKSPACES_WRITE)
    data = await body(request, OrgWorkspacePatch)
    svc = services(request)
    changed = [f for f in data.__struct_fields__ if getattr(data, f) is not msgspec.UNSET]
    webhooks = None
    async with svc.pool.acquire() as conn, conn.transaction():
        row: Any = await conn.fetchrow("SELECT * FROM workspaces WHERE id = $1 FOR UPDATE", workspace_id)
        if isinstance(data.name, str):
            row = await conn.fetchrow("UPDATE workspaces SET name = $2, updated_at = now() WHERE id = $1 RETURNING *",
                                      workspace_id, data.name)  # fmt: skip
        # Keys before settings: identity verification 'required' needs a key, which may come in this request.
        if not isinstance(data.public_keys, msgspec.UnsetType):
            await workspace_config.replace_public_keys(conn, workspace_id, data.public_keys)
        if not isinstance(data.settings, msgspec.UnsetType):
            await workspace_config.replace_settings(conn, workspace_id, data.settings)
        if not isinstance(data.webhooks, msgspec.UnsetType):
            async with api_workspace_config.webhooks_conn(svc, conn, workspace_id) as where:
                webhooks = await workspace_config.replace_webhooks(
                    where, workspace_id, data.webhooks, allow_private=svc.settings.webhook_allow_private
                )
        if changed:
            await org_audit.record(conn, actor, "update", "workspace", str(workspace_id), _snapshot(before),
                                   {**_snapshot(row), "changed": changed}, workspace_id)  # fmt: skip
        detail = await _detail(svc, conn, row, webhooks)
    if "settings" in changed or "public_keys" in changed:
        await workspace_config.publish_change(svc.redis, svc.keys, workspace_id)
    return reply(detail)


async def _set_active(request: Request, active: bool) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    actor, before = await org_access.for_workspace(request, workspace_id, op.WORKSPACES_WRITE)
    svc = services(request)
    row = await workspaces.set_active(svc, workspace_id, active)
    await org_audit.record(svc.pool, actor, "restore" if active else "archive", "workspace", str(workspace_id),
                           _snapshot(before), _snapshot(row), workspace_id)  # fmt: skip
    return reply(out(row))


async def archive(request: Request) -> Response:
    return await _set_active(request, False)


async def restore(request: Request) -> Response:
    return await _set_active(request, True)


def _archived() -> ApiError:
    return ApiError(403, "WORKSPACE_ARCHIVED", "The workspace is archived; restore it first")


async def access_token(request: Request) -> Response:
    """With the workspace's key and secret in the body, or with org credentials (`workspaces:credentials`)."""
    workspace_id = path_uuid(request, "workspace_id")
    data = await body(request, AccessTokenIn)
    svc = services(request)
    row: Any
    if data.key is not None or data.secret is not None:
        row = await svc.pool.fetchrow("SELECT *, previous_secret_until > now() AS in_grace FROM workspaces "
                                      "WHERE id = $1", workspace_id)  # fmt: skip
        generation = _by_secret(row, data)
    else:
        actor, row = await org_access.for_workspace(request, workspace_id, op.WORKSPACES_CREDENTIALS)
        generation = row["secret_generation"]
        await org_audit.record(svc.pool, actor, "access_token", "workspace", str(workspace_id), None, None,
                               workspace_id)  # fmt: skip
    if not row["is_active"]:
        raise _archived()
    token = workspace_tokens.mint(svc.settings, workspace_id, generation)
    return reply(AccessTokenOut(access_token=token, expires_in=workspace_tokens.TTL, workspace_id=workspace_id,
                                scopes=list(workspace_tokens.SCOPES)))  # fmt: skip


def _by_secret(row: Any, data: AccessTokenIn) -> int:
    """The secret generation the key and secret prove (the previous one during a rotation's grace period)."""
    refused = auth_error("The workspace key and secret do not match (or the secret was rotated)")
    if row is None or data.key is None or data.secret is None:
        raise refused
    given = secret_hash(data.secret)
    key_ok = hmac.compare_digest(row["public_key"].encode(), data.key.encode())
    if key_ok and row["secret_hash"] is not None and hmac.compare_digest(row["secret_hash"], given):
        return int(row["secret_generation"])
    previous = row["previous_secret_hash"]
    if key_ok and previous is not None and row["in_grace"] and hmac.compare_digest(previous, given):
        return int(row["secret_generation"]) - 1
    raise refused


async def rotate_secret(request: Request) -> Response:
    """A new secret; the old one (and the access tokens minted with it) stops at once, or after grace_seconds."""
    workspace_id = path_uuid(request, "workspace_id")
    actor, _ = await org_access.for_workspace(request, workspace_id, op.WORKSPACES_CREDENTIALS)
    data = await body(request, RotateSecretIn)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    grace = int(-(-data.grace_seconds // 1))
    async with services(request).pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE workspaces SET previous_secret_hash = CASE WHEN $3 > 0 THEN secret_hash END, "
            "previous_secret_until = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END, "
            "secret_hash = $2, secret_generation = secret_generation + 1, updated_at = now() "
            "WHERE id = $1 RETURNING previous_secret_until",
            workspace_id,
            secret_hash(secret),
            grace,
        )
        if row is None:
            raise not_found("workspace")
        await org_audit.record(conn, actor, "rotate_secret", "workspace", str(workspace_id), None,
                               {"grace_seconds": grace}, workspace_id)  # fmt: skip
    return reply(SecretOut(workspace_id=workspace_id, secret=secret,
                           previous_secret_expires_at=row["previous_secret_until"]))  # fmt: skip


async def create_key(request: Request) -> Response:
    """An API key of the workspace (to send events), made with org credentials: a platform hands its customer's
    SDK a key without any session. The plaintext is shown once; the plan's key limit applies."""
    workspace_id = path_uuid(request, "workspace_id")
    actor, _ = await org_access.for_workspace(request, workspace_id, op.WORKSPACES_CREDENTIALS)
    data = await body(request, KeyIn)
    try:
        names = scopes.validate(data.scopes)
    except scopes.UnknownScope as exc:
        raise validation(f"Unknown scope '{exc.name}'", "scopes") from None
    if data.expires_at is not None:
        raise validation("Keys made with org credentials do not expire; revoke them instead", "expires_at")
    async with limits.locked_workspace(services(request).pool, workspace_id) as (conn, plan):
        await limits.check_key_room(conn, plan, workspace_id)
        record, plaintext = await tenants.create_api_key(conn, workspace_id=str(workspace_id), name=data.name,
                                                         scope_names=names, description=data.description)  # fmt: skip
        await org_audit.record(conn, actor, "create", "api_key", record["id"], None,
                               {"name": data.name, "scopes": names}, workspace_id)  # fmt: skip
    return reply(api_keys.created(record, plaintext), 201)


_E = (400, 401, 403, 404)
ENDPOINTS = [
    Endpoint("POST", BASE, create, "Provision a workspace in an org; its secret is shown once", OrgWorkspaceIn,
             OrgWorkspaceCreatedOut, 201, errors=(*_E, 409)),
    Endpoint("GET", BASE, list_for_org, "The workspaces of an org (`org_id` required)", None, Page[OrgWorkspaceOut],
             query=("org_id", "limit", "cursor"), errors=_E),
    Endpoint("GET", ID, get, "An org workspace and its configuration", None, OrgWorkspaceDetailOut, errors=_E),
    Endpoint("PATCH", ID, update, "Rename or configure (settings, webhooks, public keys)", OrgWorkspacePatch,
             OrgWorkspaceDetailOut, errors=_E),
    Endpoint("POST", f"{ID}/access-token", access_token,
             f"A workspace access token ({workspace_tokens.TTL} s) for its key + secret or org credentials",
             AccessTokenIn, AccessTokenOut, auth="none", errors=_E),
    Endpoint("POST", f"{ID}/rotate-secret", rotate_secret, "A new secret; the old one stops now or after a grace",
             RotateSecretIn, SecretOut, errors=_E),
    Endpoint("POST", f"{ID}/api-keys", create_key, "An API key of the workspace; shown once", KeyIn, KeyCreatedOut,
             201, errors=_E),
    Endpoint("POST", f"{ID}/archive", archive, "Archive: data kept, keys and tokens refused (403)", None,
             OrgWorkspaceOut, errors=_E),
    Endpoint("POST", f"{ID}/restore", restore, "Restore an archived workspace", None, OrgWorkspaceOut, errors=_E),
]  # fmt: skip
