"""A workspace's configuration: its settings, its webhook destinations and its identity-verification public
keys. Each is read and replaced whole; every replace validates first (ApiError 400 VALIDATION_ERROR, with
the failing field) and writes nothing on bad input. Callers own the transaction and, after it commits,
call `publish_change` so edges drop their cached copy (ingest/identity.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from redis.asyncio import Redis

from eventplane import webhook_urls
from eventplane.db import Conn
from eventplane.errors import validation
from eventplane.redis_names import RedisNames

IDENTITY_MODES = ("off", "optional", "required")
MAX_ORIGINS = 50
MAX_WEBHOOKS = 10
MAX_PUBLIC_KEYS = 10
MAX_EVENT_TYPES = 100
SIGNING_SECRET_PREFIX = "whsec_"


# Settings -------------------------------------------------------------------------------------------
def _retention_days(value: object, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
        raise validation("retention_days must be a whole number of days from 1 to 3650, or null (keep forever)", path)
    return value


def _origin(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise validation("an origin is a string such as https://app.example.com", path)
    parts = urlsplit(value.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise validation(
            f"{value!r} is not an origin: give scheme://host[:port], such as https://app.example.com", path
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed_origins(value: object, path: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ORIGINS:
        raise validation(f"allowed_origins is a list of at most {MAX_ORIGINS} origins", path)
    return sorted({_origin(item, f"{path}[{i}]") for i, item in enumerate(value)})


def _identity_mode(value: object, path: str) -> str:
    if value not in IDENTITY_MODES:
        raise validation(f"identity_verification is one of {', '.join(IDENTITY_MODES)}", path)
    assert isinstance(value, str)
    return value


_SETTINGS: dict[str, Any] = {
    "retention_days": _retention_days,
    "allowed_origins": _allowed_origins,
    "identity_verification": _identity_mode,
}
DEFAULT_SETTINGS: dict[str, Any] = {"retention_days": None, "allowed_origins": [], "identity_verification": "off"}


def validate_settings(doc: object, path: str = "settings") -> dict[str, Any]:
    """The settings document with every documented key (missing ones at their default); unknown keys refused."""
    if not isinstance(doc, dict):
        raise validation("settings is an object", path)
    unknown = sorted(set(doc) - set(_SETTINGS))
    if unknown:
        raise validation(
            f"unknown setting {unknown[0]!r}; the settings are {', '.join(_SETTINGS)}", f"{path}.{unknown[0]}"
        )
    out = dict(DEFAULT_SETTINGS)
    for name, check in _SETTINGS.items():
        if name in doc:
            out[name] = check(doc[name], f"{path}.{name}")
    return out


async def get_settings(conn: Conn, workspace_id: uuid.UUID | str) -> dict[str, Any]:
    raw = await conn.fetchval("SELECT settings FROM workspace_settings WHERE workspace_id = $1", workspace_id)
    return {**DEFAULT_SETTINGS, **(json.loads(raw) if raw else {})}


async def replace_settings(conn: Conn, workspace_id: uuid.UUID | str, doc: object) -> dict[str, Any]:
    """Validate and store the whole settings document; returns it as stored."""
    settings = validate_settings(doc)
    if settings["identity_verification"] == "required":
        count = await conn.fetchval("SELECT count(*) FROM workspace_public_keys WHERE workspace_id = $1", workspace_id)
        if not count:
            raise validation(
                "identity_verification 'required' needs at least one public key (PUT .../public-keys first)",
                "settings.identity_verification",
            )
    await conn.execute(
        """INSERT INTO workspace_settings (workspace_id, settings) VALUES ($1, $2::jsonb)
           ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, updated_at = now()""",
        workspace_id,
        json.dumps(settings),
    )
    return settings


# Webhooks -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookInput:
    id: uuid.UUID | None
    url: str
    event_types: list[str] | None
    enabled: bool


def _url(value: object, path: str) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise validation("url is an http(s) URL of at most 2048 characters", path)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise validation(f"{value!r} is not an http(s) URL with a host (and no credentials in it)", path)
    return value


def _event_types(value: object, path: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 0 < len(value) <= MAX_EVENT_TYPES:
        raise validation(f"event_types is null (every event) or 1 to {MAX_EVENT_TYPES} event type names", path)
    if not all(isinstance(t, str) and 0 < len(t) <= 255 for t in value):
        raise validation("an event type is a name of 1 to 255 characters", path)
    return sorted(set(value))


def _webhook(item: object, path: str) -> WebhookInput:
    if not isinstance(item, dict):
        raise validation("a webhook is an object {url, event_types?, enabled?, id?}", path)
    unknown = sorted(set(item) - {"id", "url", "event_types", "enabled"})
    if unknown:
        raise validation(
            f"unknown field {unknown[0]!r}; a webhook has id, url, event_types, enabled", f"{path}.{unknown[0]}"
        )
    ident: uuid.UUID | None = None
    if item.get("id") is not None:
        try:
            ident = uuid.UUID(str(item["id"]))
        except ValueError:
            raise validation("id is the id of one of this workspace's webhooks", f"{path}.id") from None
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise validation("enabled is true or false", f"{path}.enabled")
    return WebhookInput(
        ident,
        _url(item.get("url"), f"{path}.url"),
        _event_types(item.get("event_types"), f"{path}.event_types"),
        enabled,
    )


def validate_webhooks(doc: object, path: str = "webhooks") -> list[WebhookInput]:
    if not isinstance(doc, list) or len(doc) > MAX_WEBHOOKS:
        raise validation(f"webhooks is a list of at most {MAX_WEBHOOKS} destinations", path)
    return [_webhook(item, f"{path}[{i}]") for i, item in enumerate(doc)]


_WEBHOOK_COLS = """id::text, url, event_types, enabled, consecutive_failures, failures_total, delivered_total,
    failing_since, paused_at, next_attempt_at, created_at, updated_at,
    (SELECT count(*) FROM webhook_outbox o WHERE o.destination_id = d.id) AS pending"""


def _webhook_out(row: Any) -> dict[str, Any]:
    out = dict(row)
    for name in ("failing_since", "paused_at", "next_attempt_at", "created_at", "updated_at"):
        out[name] = out[name].isoformat() if out[name] is not None else None
    out["status"] = "disabled" if not out["enabled"] else "paused" if out["paused_at"] else "active"
    return out


async def get_webhooks(conn: Conn, workspace_id: uuid.UUID | str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_WEBHOOK_COLS} FROM webhook_destinations d WHERE workspace_id = $1 ORDER BY created_at, id",
        workspace_id,
    )
    return [_webhook_out(r) for r in rows]


async def replace_webhooks(
    conn: Conn, workspace_id: uuid.UUID | str, doc: object, *, allow_private: bool
) -> list[dict[str, Any]]:
    """Replace the workspace's destinations with this list. An item with the `id` of an existing destination
    keeps its secret, queue and counters (and is resumed when it was paused); one without gets a new
    destination, returned with its `signing_secret`, shown only here. Destinations left out are deleted.
    Unless `allow_private` (EVENTPLANE_WEBHOOK_ALLOW_PRIVATE), a URL whose host is or resolves to an
    internal address is refused (400 WEBHOOK_URL_FORBIDDEN, eventplane/webhook_urls.py)."""
    items = validate_webhooks(doc)
    if not allow_private:  # names resolved at once: at most RESOLVE_TIMEOUT under the workspace's lock
        checks = [webhook_urls.check_url(item.url, f"webhooks[{i}].url") for i, item in enumerate(items)]
        for outcome in await asyncio.gather(*checks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
    existing = {
        r[0]
        for r in await conn.fetch(
            "SELECT id FROM webhook_destinations WHERE workspace_id = $1 FOR UPDATE", workspace_id
        )
    }
    for i, item in enumerate(items):
        if item.id is not None and item.id not in existing:
            raise validation(
                "id is the id of one of this workspace's webhooks (leave it out to add one)", f"webhooks[{i}].id"
            )
    kept = [item.id for item in items if item.id is not None]
    await conn.execute(
        "DELETE FROM webhook_destinations WHERE workspace_id = $1 AND NOT (id = ANY($2::uuid[]))", workspace_id, kept
    )
    shown: dict[str, str] = {}
    for item in items:
        if item.id is None:
            secret = SIGNING_SECRET_PREFIX + secrets.token_urlsafe(32)
            new_id = await conn.fetchval(
                """INSERT INTO webhook_destinations (workspace_id, url, event_types, enabled, signing_secret)
                   VALUES ($1, $2, $3, $4, $5) RETURNING id::text""",
                workspace_id,
                item.url,
                item.event_types,
                item.enabled,
                secret,
            )
            shown[new_id] = secret
        else:
            await conn.execute(
                "UPDATE webhook_destinations SET url = $2, event_types = $3, enabled = $4, updated_at = now()"
                " WHERE id = $1",
                item.id,
                item.url,
                item.event_types,
                item.enabled,
            )
            await conn.execute(  # re-enabling a paused destination resumes it, from its oldest queued event
                """UPDATE webhook_destinations SET paused_at = NULL, consecutive_failures = 0, failing_since = NULL,
                       next_attempt_at = now() WHERE id = $1 AND $2 AND paused_at IS NOT NULL""",
                item.id,
                item.enabled,
            )
    out = await get_webhooks(conn, workspace_id)
    for hook in out:
        if hook["id"] in shown:
            hook["signing_secret"] = shown[hook["id"]]
    return out


# Public keys ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PublicKey:
    kid: str
    alg: str  # ES256 or RS256
    pem: str  # SubjectPublicKeyInfo PEM, whatever form it was given in


def _from_jwk(item: dict[str, Any], path: str) -> tuple[Any, str | None]:
    kty = item.get("kty")
    try:
        if kty == "EC":
            return ECAlgorithm.from_jwk(json.dumps(item)), item.get("kid")
        if kty == "RSA":
            if "d" in item:
                raise validation("this JWK holds a private key; give only the public part", path)
            return RSAAlgorithm.from_jwk(json.dumps(item)), item.get("kid")
    except (ValueError, KeyError, TypeError) as exc:
        raise validation(f"not a usable JWK: {exc}", path) from None
    except Exception as exc:  # PyJWT raises its own InvalidKeyError
        if type(exc).__name__ == "InvalidKeyError":
            raise validation(f"not a usable JWK: {exc}", path) from None
        raise
    raise validation("a JWK has kty EC (P-256, for ES256) or RSA (for RS256)", path)


def _public_key(item: object, path: str) -> PublicKey:
    kid: str | None = None
    if isinstance(item, str):
        try:
            key: Any = serialization.load_pem_public_key(item.encode())
        except (ValueError, TypeError):
            raise validation(
                "not a PEM public key (-----BEGIN PUBLIC KEY-----); private keys are refused", path
            ) from None
    elif isinstance(item, dict):
        key, kid = _from_jwk(item, path)
    else:
        raise validation("a public key is a PEM string or a JWK object", path)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise validation("EC keys must be on P-256 (ES256)", path)
        alg = "ES256"
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise validation("RSA keys must be at least 2048 bits (RS256)", path)
        alg = "RS256"
    else:
        raise validation("only EC P-256 (ES256) and RSA (RS256) public keys are accepted", path)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= 200):
        raise validation("kid is a string of 1 to 200 characters", f"{path}.kid")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")
    return PublicKey(kid or fingerprint, alg, pem)


def validate_public_keys(doc: object, path: str = "public_keys") -> list[PublicKey]:
    if not isinstance(doc, list) or len(doc) > MAX_PUBLIC_KEYS:
        raise validation(f"public_keys is a list of at most {MAX_PUBLIC_KEYS} PEM strings or JWKs", path)
    keys = [_public_key(item, f"{path}[{i}]") for i, item in enumerate(doc)]
    kids = [k.kid for k in keys]
    for i, kid in enumerate(kids):
        if kid in kids[:i]:
            raise validation(f"two keys have kid {kid!r}", f"{path}[{i}]")
    return keys


def _key_out(row: Any) -> dict[str, Any]:
    return {"kid": row["kid"], "alg": row["alg"], "pem": row["pem"], "created_at": row["created_at"].isoformat()}


async def get_public_keys(conn: Conn, workspace_id: uuid.UUID | str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT kid, alg, pem, created_at FROM workspace_public_keys WHERE workspace_id = $1 ORDER BY created_at, kid",
        workspace_id,
    )
    return [_key_out(r) for r in rows]


async def replace_public_keys(conn: Conn, workspace_id: uuid.UUID | str, doc: object) -> list[dict[str, Any]]:
    """Replace the workspace's public keys (PEM strings or JWKs; ES256 or RS256)."""
    keys = validate_public_keys(doc)
    if not keys and (await get_settings(conn, workspace_id))["identity_verification"] == "required":
        raise validation(
            "identity verification is required: set it to 'optional' or 'off' before removing every key", "public_keys"
        )
    await conn.execute("DELETE FROM workspace_public_keys WHERE workspace_id = $1", workspace_id)
    await conn.executemany(
        "INSERT INTO workspace_public_keys (workspace_id, kid, alg, pem) VALUES ($1, $2, $3, $4)",
        [(workspace_id, k.kid, k.alg, k.pem) for k in keys],
    )
    return await get_public_keys(conn, workspace_id)


async def publish_change(redis: Redis, names: RedisNames, workspace_id: uuid.UUID | str) -> None:
    """After the transaction that changed settings or public keys committed: every edge drops its copy."""
    await redis.publish(names.workspace_config_channel, str(workspace_id))
