"""Identity verification at the edge, over a real socket: valid tokens pass; forged, expired, wrong-key,
unsigned and mismatched ones are refused with 401 IDENTITY_UNVERIFIED; anonymous events still pass.
Experiment assignments for a user_id (which record a sticky variant and a `$exposure`) are held to the same."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from redis.asyncio import Redis

from eventplane import workspace_config
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from tests.ingest import flagseed

TRACK = "/api/v1/tracking/track"
BATCH = "/api/v1/tracking/batch"
ES = ec.generate_private_key(ec.SECP256R1())
RS = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def token(key: Any, sub: str = "u_1", *, alg: str = "ES256", kid: str = "es", life: int = 300, age: int = 0) -> str:
    now = int(time.time()) - age
    return jwt.encode({"sub": sub, "iat": now, "exp": now + life}, key, algorithm=alg, headers={"kid": kid})


async def configure(pool: asyncpg.Pool, redis: Redis, keys: RedisNames, tenant: Tenant, mode: str) -> None:
    rs_jwk = json.loads(RSAAlgorithm.to_jwk(RS.public_key())) | {"kid": "rs"}
    async with pool.acquire() as conn, conn.transaction():
        await workspace_config.replace_public_keys(conn, tenant.workspace_id, [{**_jwk_es(), "kid": "es"}, rs_jwk])
        await workspace_config.replace_settings(conn, tenant.workspace_id, {"identity_verification": mode})
    await workspace_config.publish_change(redis, keys, tenant.workspace_id)


def _jwk_es() -> dict[str, Any]:
    return dict(json.loads(ECAlgorithm.to_jwk(ES.public_key())))


async def track(edge: httpx.AsyncClient, tenant: Tenant, identity: str | None, **event: Any) -> httpx.Response:
    headers = tenant.headers | ({"X-EventPlane-Identity": identity} if identity is not None else {})
    return await edge.post(TRACK, headers=headers, json={"event_type": "e", **event})


def _refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "IDENTITY_UNVERIFIED"
    assert response.json()["error"]["details"]["reason"] == reason


@pytest.fixture
async def required(pool: asyncpg.Pool, redis: Redis, keys: RedisNames, tenant: Tenant) -> Tenant:
    await configure(pool, redis, keys, tenant, "required")
    return tenant


async def test_valid_tokens_are_accepted(edge: httpx.AsyncClient, required: Tenant) -> None:
    for identity in (token(ES), token(RS, alg="RS256", kid="rs"), token(ES, kid="unknown-kid-tries-every-key")):
        response = await track(edge, required, identity, user_id="u_1")
        assert response.status_code == 202, response.text


async def test_anonymous_events_need_no_token(edge: httpx.AsyncClient, required: Tenant) -> None:
    assert (await track(edge, required, None, anonymous_id="a_1")).status_code == 202


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        (lambda: None, "missing"),  # unsigned: nothing gets in
        (lambda: token(OTHER), "bad_signature"),  # forged: right kid, another key
        (lambda: token(OTHER, kid="nobody"), "bad_signature"),  # wrong key
        (lambda: token(ES, age=400), "expired"),
        (lambda: token(ES, life=7200), "lifetime"),  # over EVENTPLANE_IDENTITY_TOKEN_MAX_LIFETIME
        (lambda: token(ES, sub="someone_else"), "sub_mismatch"),
        (lambda: jwt.encode({"sub": "u_1", "iat": int(time.time()), "exp": int(time.time()) + 60}, "k" * 32,
                            algorithm="HS256"),
         "unknown_key"),  # an HMAC "signed" with a guessable secret
        (lambda: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1XzEifQ.", "unknown_key"),  # alg none
        (lambda: "not a jwt", "malformed"),
    ],
)  # fmt: skip
async def test_unbacked_identities_are_refused(
    edge: httpx.AsyncClient, required: Tenant, identity: Callable[[], str | None], reason: str
) -> None:
    # Tokens are made when the test runs, not at collection: a suite takes longer than their 5-minute life.
    _refused(await track(edge, required, identity(), user_id="u_1"), reason)


async def test_one_bad_event_refuses_the_whole_batch(edge: httpx.AsyncClient, required: Tenant) -> None:
    events = [{"event_type": "e", "user_id": "u_1"}, {"event_type": "e", "user_id": "u_2"}]
    headers = required.headers | {"X-EventPlane-Identity": token(ES)}
    response = await edge.post(BATCH, headers=headers, json={"events": events})
    _refused(response, "sub_mismatch")
    assert response.json()["error"]["details"]["index"] == 1


async def test_optional_mode_checks_only_tokens_sent(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, tenant: Tenant
) -> None:
    await configure(pool, redis, keys, tenant, "optional")
    assert (await track(edge, tenant, None, user_id="u_1")).status_code == 202
    assert (await track(edge, tenant, token(ES), user_id="u_1")).status_code == 202
    _refused(await track(edge, tenant, token(OTHER), user_id="u_1"), "bad_signature")


async def test_requiring_it_reaches_the_edge_within_a_second(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert (await track(edge, tenant, None, user_id="u_1")).status_code == 202  # "off" is now cached
    await configure(pool, redis, keys, tenant, "required")
    deadline = time.monotonic() + 1.0
    while (response := await track(edge, tenant, None, user_id="u_1")).status_code == 202:
        assert time.monotonic() < deadline, "the edge still accepts unsigned identified events after 1 s"
    _refused(response, "missing")
    # and a key removed stops its tokens: keep only the RSA key
    async with pool.acquire() as conn:
        rs_jwk = json.loads(RSAAlgorithm.to_jwk(RS.public_key())) | {"kid": "rs"}
        await workspace_config.replace_public_keys(conn, tenant.workspace_id, [rs_jwk])
    await workspace_config.publish_change(redis, keys, tenant.workspace_id)
    deadline = time.monotonic() + 1.0
    while (await track(edge, tenant, token(ES), user_id="u_1")).status_code == 202:
        assert time.monotonic() < deadline, "a removed key's tokens still pass after 1 s"


async def _assign(
    edge: httpx.AsyncClient, tenant: Tenant, identity: str | None, key: str = "checkout", **context: Any
) -> httpx.Response:
    headers = tenant.headers | ({"X-EventPlane-Identity": identity} if identity is not None else {})
    return await edge.post(f"/api/v1/experiments/{key}/assign", headers=headers, json=context)


async def _experiment(pool: asyncpg.Pool, redis: Redis, keys: RedisNames, tenant: Tenant) -> str:
    """A running experiment and a flag in the tenant's config; returns the experiment's sticky hash."""
    definition = flagseed.experiment("checkout")
    await flagseed.put(pool, redis, keys, tenant.workspace_id, flags=[flagseed.flag("f")], experiments=[definition])
    return keys.sticky(tenant.workspace_id, "checkout", definition["salt"], definition["bucket_version"])


async def test_assignment_for_a_user_is_verified_like_an_event(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, required: Tenant
) -> None:
    sticky = await _experiment(pool, redis, keys, required)
    for identity, reason in (
        (None, "missing"),
        (token(OTHER), "bad_signature"),
        (token(ES, sub="u_2"), "sub_mismatch"),
    ):
        response = await _assign(edge, required, identity, user_id="u_1")
        _refused(response, reason)
        assert "index" not in response.json()["error"]["details"]
    assert await redis.hgetall(sticky) == {}, "a refused assignment recorded a sticky variant"  # type: ignore[misc]

    ok = await _assign(edge, required, token(ES), user_id="u_1")
    assert ok.status_code == 200, ok.text
    assert ok.json()["reason"] == "SPLIT"
    assert set(await redis.hkeys(sticky)) == {b"u_1"}  # type: ignore[misc]
    # Anonymous units need no token, as anonymous events do.
    anonymous = await _assign(edge, required, None, anonymous_id="a_1")
    assert anonymous.status_code == 200, anonymous.text
    # Evaluating a flag records nothing: it stays a read, as fetching the config document is.
    evaluated = await edge.post("/api/v1/feature-flags/f/evaluate", headers=required.headers, json={"user_id": "u_1"})
    assert evaluated.status_code == 200, evaluated.text


async def test_refused_assignments_queue_no_exposure(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, required: Tenant, settings: Settings
) -> None:
    await _experiment(pool, redis, keys, required)
    _refused(await _assign(edge, required, None, user_id="victim"), "missing")
    assert (await _assign(edge, required, token(ES, sub="u_9"), user_id="u_9")).status_code == 200
    await drain(settings)
    rows = await pool.fetch(
        "SELECT user_id FROM events WHERE workspace_id = $1 AND event_type = '$exposure'",
        uuid.UUID(required.workspace_id),
    )
    assert [r["user_id"] for r in rows] == ["u_9"]


async def test_optional_mode_checks_assignment_tokens_sent(
    pool: asyncpg.Pool, redis: Redis, keys: RedisNames, edge: httpx.AsyncClient, tenant: Tenant
) -> None:
    await configure(pool, redis, keys, tenant, "optional")
    await _experiment(pool, redis, keys, tenant)
    assert (await _assign(edge, tenant, None, user_id="u_1")).status_code == 200
    assert (await _assign(edge, tenant, token(ES), user_id="u_1")).status_code == 200
    _refused(await _assign(edge, tenant, token(OTHER), user_id="u_1"), "bad_signature")
    _refused(await _assign(edge, tenant, token(ES), user_id="u_2"), "sub_mismatch")
