"""A workspace's configuration over the api: settings, webhook destinations (with their delivery log) and
identity-verification public keys. Members read (`workspace:read`); ADMIN and OWNER replace
(`workspace:update`). Each replace is validated by eventplane/workspace_config.py, written under the
workspace's row lock with an audit-log entry, then published to the edges. Webhook destinations live on
the workspace's instance beside its events (eventplane/instance_config.py): read and written there, their
audit entry in the hub."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import access, members
from api import permissions as p
from api.errors import forbidden, not_found
from api.rest import _read, path_uuid, query_int, reply
from api.routing import Endpoint
from api.state import Services, services
from api.wire import Input
from eventplane import workspace_config as wc
from eventplane.db import Conn
from eventplane.errors import validation

BASE = "/api/v1/workspaces/{workspace_id:uuid}"
_json = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


# Wire types (what /openapi.json shows; bodies are checked by eventplane.workspace_config) --------------
class SettingsDoc(Input):
    retention_days: int | None = None
    allowed_origins: list[str] = []
    identity_verification: Literal["off", "optional", "required"] = "off"


class WebhookIn(Input):
    url: str
    event_types: list[str] | None = None
    enabled: bool = True
    id: uuid.UUID | None = None  # an existing destination's id keeps its secret, queue and counters


class WebhooksIn(Input):
    webhooks: list[WebhookIn]


class WebhookOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    url: str
    event_types: list[str] | None
    enabled: bool
    status: Literal["active", "paused", "disabled"]
    pending: int  # events queued for it
    delivered_total: int
    failures_total: int
    consecutive_failures: int
    failing_since: dt.datetime | None
    paused_at: dt.datetime | None
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    signing_secret: str | None = None  # only in the answer that created the destination


class WebhooksOut(msgspec.Struct):
    webhooks: list[WebhookOut]


class DeliveryOut(msgspec.Struct, kw_only=True):
    id: int
    attempted_at: dt.datetime
    events: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveriesOut(msgspec.Struct):
    items: list[DeliveryOut]


class PublicKeysIn(Input):
    public_keys: list[str | dict[str, Any]]  # PEM strings or JWKs (EC P-256 or RSA)


class PublicKeyOut(msgspec.Struct, kw_only=True):
    kid: str
    alg: Literal["ES256", "RS256"]
    pem: str
    created_at: dt.datetime


class PublicKeysOut(msgspec.Struct):
    public_keys: list[PublicKeyOut]


# Handlers -------------------------------------------------------------------------------------------
async def _doc(request: Request) -> Any:
    raw = await _read(request)
    try:
        return _json.decode(raw if raw.strip() else b"{}")  # an empty body counts as {}, as elsewhere
    except msgspec.DecodeError:
        raise validation("Request body is not valid JSON") from None


def _field(doc: Any, name: str) -> Any:
    if not isinstance(doc, dict) or set(doc) != {name}:
        raise validation(f'The body is {{"{name}": [...]}}', name)
    return doc[name]


async def _locked(conn: Conn, membership: access.Membership) -> None:
    """The workspace row locked, and the caller's role read again under the lock."""
    await conn.execute("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE", membership.workspace["id"])
    role = await members.role_now(conn, membership)
    if not p.allows(role, p.WORKSPACE_UPDATE):
        raise forbidden(f"Your role ({role.value}) lacks the permission '{p.WORKSPACE_UPDATE}'",
                        {"required": p.WORKSPACE_UPDATE})  # fmt: skip


async def _audit(conn: Conn, who: access.Membership, entity: str, before: Any, after: Any) -> None:
    await conn.execute(
        "INSERT INTO audit_log (workspace_id, actor_user_id, action, entity_type, entity_key, before, after) "
        "VALUES ($1, $2, 'update', $3, $4, $5::text::jsonb, $6::text::jsonb)",
        who.workspace["id"], who.user.id, entity, str(who.workspace["id"]),
        _encoder.encode(before).decode(), _encoder.encode(after).decode(),
    )  # fmt: skip


def _without_secrets(hooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if k != "signing_secret"} for h in hooks]


async def get_settings(request: Request) -> Response:
    workspace = await access.workspace(request, path_uuid(request, "workspace_id"), p.WORKSPACE_READ)
    async with services(request).pool.acquire() as conn:
        return reply(await wc.get_settings(conn, workspace["id"]))


async def put_settings(request: Request) -> Response:
    who = await access.membership(request, path_uuid(request, "workspace_id"), p.WORKSPACE_UPDATE)
    doc = await _doc(request)
    svc = services(request)
    async with svc.pool.acquire() as conn, conn.transaction():
        await _locked(conn, who)
        before = await wc.get_settings(conn, who.workspace["id"])
        after = await wc.replace_settings(conn, who.workspace["id"], doc)
        await _audit(conn, who, "workspace_settings", before, after)
    await wc.publish_change(svc.redis, svc.keys, who.workspace["id"])
    return reply(after)


@contextlib.asynccontextmanager
async def webhooks_conn(svc: Services, hub: Conn, workspace_id: uuid.UUID) -> AsyncIterator[Conn]:
    """A connection where the workspace's webhook destinations are: `hub` itself (in the caller's
    transaction) for the default instance, else a transaction on its instance, committed before the
    caller's hub transaction (whose row lock still orders concurrent replaces)."""
    data = await svc.data.pool(workspace_id)
    if data is svc.pool:
        yield hub
        return
    async with data.acquire() as conn, conn.transaction():
        yield conn


async def get_webhooks(request: Request) -> Response:
    workspace = await access.workspace(request, path_uuid(request, "workspace_id"), p.WORKSPACE_READ)
    data = await services(request).data.pool(workspace["id"])
    async with data.acquire() as conn:
        return reply({"webhooks": await wc.get_webhooks(conn, workspace["id"])})


async def put_webhooks(request: Request) -> Response:
    who = await access.membership(request, path_uuid(request, "workspace_id"), p.WORKSPACE_UPDATE)
    items = _field(await _doc(request), "webhooks")
    svc = services(request)
    async with svc.pool.acquire() as conn, conn.transaction():
        await _locked(conn, who)
        async with webhooks_conn(svc, conn, who.workspace["id"]) as data:
            before = await wc.get_webhooks(data, who.workspace["id"])
            after = await wc.replace_webhooks(
                data, who.workspace["id"], items, allow_private=svc.settings.webhook_allow_private
            )
        await _audit(conn, who, "webhooks", before, _without_secrets(after))
    return reply({"webhooks": after})


async def get_deliveries(request: Request) -> Response:
    """The destination's delivery attempts, newest first (the last 1,000 are kept)."""
    workspace = await access.workspace(request, path_uuid(request, "workspace_id"), p.WORKSPACE_READ)
    limit = query_int(request, "limit", 50, 1, 200)
    data = await services(request).data.pool(workspace["id"])
    rows = await data.fetch(
        "SELECT l.id, l.attempted_at, l.events, l.ok, l.status_code, l.error, l.duration_ms "
        "FROM webhook_deliveries l JOIN webhook_destinations d ON d.id = l.destination_id "
        "WHERE d.workspace_id = $1 AND d.id = $2 ORDER BY l.id DESC LIMIT $3",
        workspace["id"],
        path_uuid(request, "webhook_id"),
        limit,
    )
    if not rows and not await data.fetchval(
        "SELECT true FROM webhook_destinations WHERE workspace_id = $1 AND id = $2",
        workspace["id"],
        path_uuid(request, "webhook_id"),
    ):
        raise not_found("webhook")
    return reply({"items": [dict(r) for r in rows]})


async def get_public_keys(request: Request) -> Response:
    workspace = await access.workspace(request, path_uuid(request, "workspace_id"), p.WORKSPACE_READ)
    async with services(request).pool.acquire() as conn:
        return reply({"public_keys": await wc.get_public_keys(conn, workspace["id"])})


async def put_public_keys(request: Request) -> Response:
    who = await access.membership(request, path_uuid(request, "workspace_id"), p.WORKSPACE_UPDATE)
    items = _field(await _doc(request), "public_keys")
    svc = services(request)
    async with svc.pool.acquire() as conn, conn.transaction():
        await _locked(conn, who)
        before = await wc.get_public_keys(conn, who.workspace["id"])
        after = await wc.replace_public_keys(conn, who.workspace["id"], items)
        await _audit(conn, who, "public_keys", [k["kid"] for k in before], [k["kid"] for k in after])
    await wc.publish_change(svc.redis, svc.keys, who.workspace["id"])
    return reply({"public_keys": after})


_ERRORS = (400, 401, 403, 404)
ENDPOINTS = [
    Endpoint("GET", f"{BASE}/settings", get_settings, "The workspace's settings", None, SettingsDoc,
             auth="session_or_key", errors=_ERRORS),
    Endpoint("PUT", f"{BASE}/settings", put_settings, "Replace the workspace's settings (unknown keys refused)",
             SettingsDoc, SettingsDoc, errors=_ERRORS),
    Endpoint("GET", f"{BASE}/webhooks", get_webhooks, "Webhook destinations, with failure counts", None,
             WebhooksOut, auth="session_or_key", errors=_ERRORS),
    Endpoint("PUT", f"{BASE}/webhooks", put_webhooks,
             "Replace the webhook destinations; a new one's signing_secret is shown only here", WebhooksIn,
             WebhooksOut, errors=_ERRORS),
    Endpoint("GET", f"{BASE}/webhooks/{{webhook_id:uuid}}/deliveries", get_deliveries,
             "A destination's delivery log, newest first", None, DeliveriesOut, auth="session_or_key",
             query=("limit",), errors=_ERRORS),
    Endpoint("GET", f"{BASE}/public-keys", get_public_keys, "Public keys that sign identity tokens", None,
             PublicKeysOut, auth="session_or_key", errors=_ERRORS),
    Endpoint("PUT", f"{BASE}/public-keys", put_public_keys, "Replace the identity-verification public keys",
             PublicKeysIn, PublicKeysOut, errors=_ERRORS),
]  # fmt: skip
