"""The configuration module: documented settings only, webhook lists, PEM and JWK public keys."""

from __future__ import annotations

import json

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from eventplane import workspace_config as wc
from eventplane.errors import ApiError
from tests.conftest import Tenant


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"colour": "red"}, "settings.colour"),
        ({"retention_days": 0}, "settings.retention_days"),
        ({"retention_days": True}, "settings.retention_days"),
        ({"identity_verification": "always"}, "settings.identity_verification"),
        ({"allowed_origins": ["https://a.example.com/path"]}, "settings.allowed_origins[0]"),
        ({"allowed_origins": "https://a.example.com"}, "settings.allowed_origins"),
        ([], "settings"),
    ],
)
def test_bad_settings_are_refused_with_their_field(doc: object, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        wc.validate_settings(doc)
    assert (caught.value.status, caught.value.code, caught.value.details) == (400, "VALIDATION_ERROR", {"field": field})


def test_settings_fill_defaults_and_normalise_origins() -> None:
    out = wc.validate_settings({"allowed_origins": ["https://App.Example.com/", "https://app.example.com"]})
    assert out == {
        "retention_days": None,
        "allowed_origins": ["https://app.example.com"],
        "identity_verification": "off",
    }


@pytest.mark.parametrize(
    "doc",
    [
        [{"url": "ftp://x.example.com"}],
        [{"url": "https://user:pw@x.example.com"}],
        [{"url": "https://x.example.com", "event_types": []}],
        [{"url": "https://x.example.com", "enabled": "yes"}],
        [{"url": "https://x.example.com", "secret": "mine"}],
        [{"url": "https://x.example.com", "id": "nope"}],
        {"url": "https://x.example.com"},
    ],
)
def test_bad_webhooks_are_refused(doc: object) -> None:
    with pytest.raises(ApiError) as caught:
        wc.validate_webhooks(doc)
    assert caught.value.code == "VALIDATION_ERROR"


def test_public_keys_as_pem_and_jwk() -> None:
    es = ec.generate_private_key(ec.SECP256R1())
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(ECAlgorithm.to_jwk(es.public_key())) | {"kid": "backend-1"}
    keys = wc.validate_public_keys([_pem(rs), jwk])
    assert [k.alg for k in keys] == ["RS256", "ES256"]
    assert keys[1].kid == "backend-1" and keys[1].pem == _pem(es)


@pytest.mark.parametrize(
    "item",
    [
        "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n",
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        42,
    ],
)
def test_bad_public_keys_are_refused(item: object) -> None:
    with pytest.raises(ApiError) as caught:
        wc.validate_public_keys([item])
    assert caught.value.details == {"field": "public_keys[0]"}


def test_other_curves_and_private_keys_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    private_pem = p384.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    for item in (_pem(p384), private_pem):
        with pytest.raises(ApiError):
            wc.validate_public_keys([item])


async def test_replace_round_trips_and_keeps_secrets_once(pool: asyncpg.Pool, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    async with pool.acquire() as conn:
        with pytest.raises(ApiError):  # required without a key would lock every identified event out
            await wc.replace_settings(conn, ws, {"identity_verification": "required"})
        await wc.replace_public_keys(conn, ws, [_pem(ec.generate_private_key(ec.SECP256R1()))])
        await wc.replace_settings(conn, ws, {"identity_verification": "required", "retention_days": 30})
        assert (await wc.get_settings(conn, ws))["identity_verification"] == "required"

        created = await wc.replace_webhooks(conn, ws, [{"url": "https://hooks.example.com/a"}], allow_private=True)
        assert created[0]["signing_secret"].startswith("whsec_") and created[0]["status"] == "active"
        hook_id = created[0]["id"]
        kept = await wc.replace_webhooks(
            conn,
            ws,
            [{"id": hook_id, "url": "https://hooks.example.com/b", "event_types": ["signup"]}],
            allow_private=True,
        )
        assert kept[0]["id"] == hook_id and "signing_secret" not in kept[0] and kept[0]["event_types"] == ["signup"]
        assert "signing_secret" not in (await wc.get_webhooks(conn, ws))[0]
        with pytest.raises(ApiError):
            await wc.replace_webhooks(
                conn, ws, [{"id": "00000000-0000-0000-0000-000000000000", "url": "https://x.io"}], allow_private=True
            )
        assert await wc.replace_webhooks(conn, ws, [], allow_private=True) == []
