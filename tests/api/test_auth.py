"""Sign up, log in, refresh, log out, me: tokens, hashing, rate limits and the error shape."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import jwt
from starlette.applications import Starlette

from eventplane.settings import Settings
from tests.api.conftest import PASSWORD, client_for, error_code, new_account, unique_email

SIGNUP, LOGIN, REFRESH, LOGOUT, ME = (f"/api/v1/{p}" for p in ("auth/signup", "auth/login", "auth/refresh",
                                                              "auth/logout", "me"))  # fmt: skip


async def test_signup_then_login_gives_a_30_minute_jwt(api: httpx.AsyncClient, api_settings: Settings) -> None:
    email = unique_email()
    r = await api.post(SIGNUP, json={"email": email, "password": PASSWORD, "name": "Ada"})
    assert r.status_code == 201
    user = r.json()
    assert set(user) == {"id", "email", "name", "created_at"} and user["email"] == email

    r = await api.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert r.status_code == 200
    tokens = r.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("bearer", 1800)
    claims = jwt.decode(tokens["access_token"], str(api_settings.jwt_secret), algorithms=["HS256"],
                        audience="eventplane-api")  # fmt: skip
    assert claims["sub"] == user["id"] and claims["exp"] - claims["iat"] == 1800

    r = await api.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert (r.status_code, r.json()) == (200, user)


async def test_password_is_stored_as_argon2_never_plain(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    account = await new_account(api)
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", account.id)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_emails_are_case_insensitive(api: httpx.AsyncClient) -> None:
    email = unique_email()
    await new_account(api, email=email)
    r = await api.post(SIGNUP, json={"email": email.upper(), "password": PASSWORD})
    assert (r.status_code, error_code(r)) == (409, "CONFLICT")
    r = await api.post(LOGIN, json={"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 200


async def test_wrong_password_and_unknown_email_look_the_same(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    wrong = await api.post(LOGIN, json={"email": account.email, "password": "not the password"})
    unknown = await api.post(LOGIN, json={"email": unique_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert error_code(wrong) == "AUTH_ERROR"


async def test_signup_validation_names_the_field(api: httpx.AsyncClient) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": unique_email(), "password": "short"}, "password"),
        ({"email": unique_email()}, "password"),
        ({"email": unique_email(), "password": PASSWORD, "role": "OWNER"}, "role"),
        ({"email": unique_email(), "password": PASSWORD, "name": "x" * 101}, "name"),
    ]
    for payload, field in cases:
        r = await api.post(SIGNUP, json=payload)
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), payload
        assert r.json()["error"]["details"]["field"] == field


async def test_malformed_bodies_are_400_never_500(api: httpx.AsyncClient) -> None:
    for content in (b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b'{"email": 5, "password": []}'):
        r = await api.post(LOGIN, content=content, headers={"Content-Type": "application/json"})
        assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR"), content
    r = await api.post(SIGNUP, content=b"{" + b" " * 70_000 + b"}")
    assert (r.status_code, error_code(r)) == (413, "PAYLOAD_TOO_LARGE")


async def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    r = await api.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert r.status_code == 200
    fresh = r.json()
    assert fresh["refresh_token"] != account.refresh_token
    assert (await api.get(ME, headers={"Authorization": f"Bearer {fresh['access_token']}"})).status_code == 200

    # The old refresh token again: someone kept a copy. It fails, and so does the whole session.
    r = await api.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    assert (await api.get(ME, headers={"Authorization": f"Bearer {fresh['access_token']}"})).status_code == 401
    assert (await api.post(REFRESH, json={"refresh_token": fresh["refresh_token"]})).status_code == 401


async def test_logout_revokes_refresh_token_and_access_token_at_once(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    r = await api.post(LOGOUT, json={"refresh_token": account.refresh_token})
    assert r.status_code == 204
    assert (await api.post(REFRESH, json={"refresh_token": account.refresh_token})).status_code == 401
    assert (await api.get(ME, headers=account.headers)).status_code == 401


async def test_logout_with_only_the_access_token(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    assert (await api.post(LOGOUT, headers=account.headers)).status_code == 204
    assert (await api.get(ME, headers=account.headers)).status_code == 401
    assert (await api.post(LOGOUT)).status_code == 401


async def test_other_sessions_survive_a_logout(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    r = await api.post(LOGIN, json={"email": account.email, "password": PASSWORD})
    other = r.json()["access_token"]
    await api.post(LOGOUT, json={"refresh_token": account.refresh_token})
    assert (await api.get(ME, headers={"Authorization": f"Bearer {other}"})).status_code == 200


async def test_bad_access_tokens_are_401(api: httpx.AsyncClient, api_settings: Settings) -> None:
    account = await new_account(api)
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, str(api_settings.jwt_secret), algorithm="HS256")
    forged = jwt.encode(claims, "another-secret-of-at-least-32-bytes!!", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (expired, forged, unsigned, "garbage", ""):
        r = await api.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR"), token
        assert r.headers["www-authenticate"] == "Bearer"
    assert (await api.get(ME)).status_code == 401
    assert (await api.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})).status_code == 401


async def test_login_is_rate_limited_per_email(api_app: Starlette, api_settings: Settings) -> None:
    limit = api_settings.login_limit_per_email
    async with client_for(api_app) as api:
        account = await new_account(api)
    for _ in range(limit - 1):  # new_account used one attempt
        async with client_for(api_app) as other_ip:  # a new address each time: the email's limit applies
            r = await other_ip.post(LOGIN, json={"email": account.email, "password": "wrong password"})
            assert r.status_code == 401
    async with client_for(api_app) as other_ip:
        r = await other_ip.post(LOGIN, json={"email": account.email.upper(), "password": PASSWORD})
    assert (r.status_code, error_code(r)) == (429, "RATE_LIMITED")
    assert 0 < int(r.headers["retry-after"]) <= api_settings.login_window_seconds


async def test_login_is_rate_limited_per_ip(api_app: Starlette, api_settings: Settings) -> None:
    async with client_for(api_app) as api:
        attempts = [
            api.post(LOGIN, json={"email": unique_email(), "password": "x"})
            for _ in range(api_settings.login_limit_per_ip)
        ]
        assert {r.status_code for r in await asyncio.gather(*attempts)} == {401}
        r = await api.post(LOGIN, json={"email": unique_email(), "password": "x"})
        assert (r.status_code, error_code(r)) == (429, "RATE_LIMITED")
        assert int(r.headers["retry-after"]) > 0
    async with client_for(api_app) as elsewhere:
        r = await elsewhere.post(LOGIN, json={"email": unique_email(), "password": "x"})
        assert r.status_code == 401


async def test_me_refuses_an_api_key(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    from tests.conftest import make_tenant

    tenant = await make_tenant(pool)
    r = await api.get(ME, headers={"Authorization": f"Bearer {tenant.key}"})
    assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")
    r = await api.get(ME, headers={"X-API-Key": tenant.key})
    assert (r.status_code, error_code(r)) == (403, "API_KEY_NOT_ALLOWED")


async def test_unknown_route_and_method_use_the_error_shape(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/nope")
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    r = await api.delete(ME)
    assert (r.status_code, error_code(r)) == (405, "METHOD_NOT_ALLOWED")
