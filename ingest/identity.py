"""Identity verification at the edge: a workspace that requires it accepts an event with a `user_id` only
when the request carries `X-EventPlane-Identity: <JWT>` signed by one of the workspace's public keys
(ES256 or RS256), unexpired, issued for at most EVENTPLANE_IDENTITY_TOKEN_MAX_LIFETIME seconds, whose
`sub` is that user_id. Anonymous events (no user_id) need no token. In "optional" mode a token that is
sent must be valid, and events without one pass. One token covers a request (a browser sends one user).

Each edge keeps every workspace's mode and keys in memory (one Postgres read per workspace per
EVENTPLANE_KEY_CACHE_TTL), dropped on the workspace-config channel when they change, as the key cache
is; a workspace with verification off costs a dict lookup per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from redis.asyncio import Redis

from eventplane.errors import TRANSIENT_ERRORS, ApiError
from eventplane.redis_client import raise_if_cancelled
from eventplane.redis_names import RedisNames
from ingest.asgi import Headers
from ingest.wire import Event

log = logging.getLogger("eventplane.ingest.identity")
HEADER = b"x-eventplane-identity"
MAX_TOKEN_BYTES = 4096
MAX_VERIFIED = 10_000  # verified tokens remembered per workspace (SDKs resend the same token)
LOOKUP_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, asyncpg.PostgresError)
LEEWAY = 5  # seconds of clock difference allowed on exp/iat/nbf
_LOAD = """
SELECT coalesce((SELECT settings ->> 'identity_verification' FROM workspace_settings WHERE workspace_id = $1), 'off'),
       coalesce((SELECT array_agg(ARRAY[kid, alg, pem]) FROM workspace_public_keys WHERE workspace_id = $1), '{}'),
       coalesce((SELECT array(SELECT jsonb_array_elements_text(settings -> 'allowed_origins'))
                 FROM workspace_settings WHERE workspace_id = $1), '{}')
"""


@dataclass
class IdentityConfig:
    """What the edge needs of a workspace's settings: identity verification, and browser origins (CORS)."""

    mode: str  # off | optional | required
    keys: dict[str, tuple[str, Any]]  # kid -> (alg, public key)
    origins: frozenset[bytes] = frozenset()  # allowed_origins; empty: Origin not checked
    verified: dict[str, tuple[str, float]] = field(default_factory=dict)  # sha256(token) -> (sub, exp)


OFF = IdentityConfig("off", {})


def unverified(reason: str, message: str, index: int | None = None) -> ApiError:
    details: dict[str, Any] = {"reason": reason}
    if index is not None:
        details["index"] = index
    return ApiError(401, "IDENTITY_UNVERIFIED", message, details)


class IdentityVerifier:
    def __init__(self, redis: Redis, pool: asyncpg.Pool, names: RedisNames, ttl: float, max_lifetime: int) -> None:
        self._redis = redis
        self._pool = pool
        self._names = names
        self._ttl = ttl
        self._max_lifetime = max_lifetime
        self._local: dict[str, tuple[IdentityConfig, float]] = {}
        self._generation = 0
        self._live = False

    async def check(self, workspace_id: str, headers: Headers, events: Sequence[Event]) -> None:
        """Refuse the request (401 IDENTITY_UNVERIFIED) when one of its identified events is not backed."""
        # A generator: a workspace with verification off (most) never walks the batch.
        await self._check_users(workspace_id, headers, (event.user_id for event in events), indexed=True)

    async def check_user(self, workspace_id: str, headers: Headers, user_id: str | None) -> None:
        """The same rule for a request that acts for one user without sending events: an experiment
        assignment records that user's sticky variant and `$exposure`, so it is held to what events are."""
        await self._check_users(workspace_id, headers, [user_id or None], indexed=False)

    async def _check_users(
        self, workspace_id: str, headers: Headers, user_ids: Iterable[str | None], *, indexed: bool
    ) -> None:
        config = await self.config(workspace_id)
        if config.mode == "off":
            return
        raw = headers.get(HEADER)
        if raw is None:
            if config.mode == "required":
                for i, user_id in enumerate(user_ids):
                    if user_id is not None:
                        raise unverified(
                            "missing",
                            "This workspace requires identity verification: send the user's signed token in "
                            f"X-EventPlane-Identity, or send {'the event' if indexed else 'the context'} with "
                            "anonymous_id only",
                            i if indexed else None,
                        )
            return
        sub = self._verify(config, workspace_id, raw)
        for i, user_id in enumerate(user_ids):
            if user_id is not None and user_id != sub:
                what = "this event's" if indexed else "the context's"
                raise unverified(
                    "sub_mismatch", f"The identity token's sub is not {what} user_id", i if indexed else None
                )

    def _verify(self, config: IdentityConfig, workspace_id: str, raw: bytes) -> str:
        digest = hashlib.sha256(raw).hexdigest()
        known = config.verified.get(digest)
        now = time.time()
        if known is not None and now < known[1] + LEEWAY:
            return known[0]
        claims = self._decode(config, workspace_id, raw)
        if len(config.verified) >= MAX_VERIFIED:
            config.verified.clear()
        config.verified[digest] = (claims["sub"], float(claims["exp"]))
        return str(claims["sub"])

    def _decode(self, config: IdentityConfig, workspace_id: str, raw: bytes) -> dict[str, Any]:
        if len(raw) > MAX_TOKEN_BYTES:
            raise unverified("malformed", f"The identity token is over {MAX_TOKEN_BYTES} bytes")
        token = raw.decode("latin-1").strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unverified("malformed", "X-EventPlane-Identity is not a JWT") from None
        kid = header.get("kid")
        candidates = [config.keys[kid]] if isinstance(kid, str) and kid in config.keys else list(config.keys.values())
        candidates = [c for c in candidates if c[0] == header.get("alg")]
        if not candidates:
            raise unverified("unknown_key", "The identity token is not signed (ES256/RS256) by a key of this workspace")
        for alg, key in candidates:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    leeway=LEEWAY,
                    options={"require": ["exp", "iat", "sub"], "verify_aud": False},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise unverified(
                    "expired", "The identity token has expired; get a fresh one from your backend"
                ) from None
            except jwt.PyJWTError as exc:
                raise unverified("invalid", f"The identity token is not valid: {exc}") from None
            self._check_claims(claims, workspace_id)
            return claims
        raise unverified("bad_signature", "The identity token's signature does not match any key of this workspace")

    def _check_claims(self, claims: dict[str, Any], workspace_id: str) -> None:
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise unverified("invalid", "The identity token's sub must be the user_id, a string")
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > self._max_lifetime:
            raise unverified(
                "lifetime", f"The identity token lives {lifetime:.0f} s; at most {self._max_lifetime} s is accepted"
            )
        audience = claims.get("aud")
        if audience is not None and workspace_id not in ([audience] if isinstance(audience, str) else audience):
            raise unverified("audience", "The identity token's aud names another workspace")

    async def config(self, workspace_id: str) -> IdentityConfig:
        entry = self._local.get(workspace_id)
        if entry is not None and self._live and entry[1] > time.monotonic():
            return entry[0]
        generation = self._generation
        config = await self._load(workspace_id)
        if self._live and generation == self._generation:
            if len(self._local) >= 100_000:
                self._local.clear()
            self._local[workspace_id] = (config, time.monotonic() + self._ttl)
        return config

    async def _load(self, workspace_id: str) -> IdentityConfig:
        try:
            row = await self._pool.fetchrow(_LOAD, workspace_id)
        except LOOKUP_ERRORS as exc:
            log.warning("identity settings lookup failed: %s", type(exc).__name__)
            raise ApiError(
                503,
                "AUTH_UNAVAILABLE",
                "Cannot check identity settings right now; retry shortly",
                None,
                {"retry-after": "5"},
            ) from None
        assert row is not None  # a SELECT without FROM returns one row
        mode, rows, origins = row
        if mode == "off" and not origins:
            return OFF
        keys = {kid: (alg, load_pem_public_key(pem.encode())) for kid, alg, pem in rows}
        return IdentityConfig(mode, keys, frozenset(o.encode() for o in origins))

    async def listen(self) -> None:
        """Follow the workspace-config channel forever; while it is down, every request reads Postgres."""
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._names.workspace_config_channel)
                self._drop_all()
                self._live = True
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._local.pop(message["data"].decode(), None)
                        self._generation += 1
            except TRANSIENT_ERRORS as exc:
                raise_if_cancelled()
                if self._live:
                    log.warning("workspace-config channel lost (%s); reading Postgres", type(exc).__name__)
                self._live = False
                self._drop_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _drop_all(self) -> None:
        self._local.clear()
        self._generation += 1
