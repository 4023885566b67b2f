"""Sign up, log in, refresh, log out, me: tokens, hashing, rate limits and the error shape."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

import asyncpg
import httpx
import jwt
from starlette.applications import Starlette

from api.app import create_app
from api.passwords import Passwords
from eventplane.settings import Settings
from tests.api.conftest import PASSWORD, client_for, error_code, new_account, unique_email

SIGNUP, LOGIN, REFRESH, LOGOUT, ME = (f"/api/v1/{p}" for p in ("auth/signup", "auth/login", "auth/refresh",
                                                              "auth/logout", "me"))  # fmt: skip


async def test_signup_then_login_gives_a_30_minute_jwt(api: httpx.AsyncClient, api_settings: Settings) -> None:
    email = unique_email()
    r = await api.post(SIGNUP, json={"email": email, "password": PASSWORD, "name": "Ada"})
    assert r.status_code == 201
    user = r.json()
    assert set(user) == {"id", "email", "name", "email_verified", "created_at"} and user["email"] == email
    assert user["email_verified"] is False

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
    unsigned = jwt.encode(claims, "", algorithm="none")  # "" is how PyJWT spells no key
    for token in (expired, forged, unsigned, "garbage", ""):
        r = await api.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR"), token
        assert r.headers["www-authenticate"] == "Bearer"
    assert (await api.get(ME)).status_code == 401
    assert (await api.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})).status_code == 401


async def test_wrong_passwords_from_one_address_never_lock_the_owner_out_of_another(
    api_app: Starlette, api_settings: Settings
) -> None:
    limit = api_settings.login_limit_per_email
    async with client_for(api_app) as attacker, client_for(api_app) as owner_device:
        account = await new_account(owner_device)
        for _ in range(limit):
            r = await attacker.post(LOGIN, json={"email": account.email, "password": "wrong password"})
            assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
        r = await attacker.post(LOGIN, json={"email": account.email.upper(), "password": PASSWORD})
        assert (r.status_code, error_code(r)) == (429, "RATE_LIMITED")
        assert 0 < int(r.headers["retry-after"]) <= api_settings.login_window_seconds
        r = await owner_device.post(LOGIN, json={"email": account.email, "password": PASSWORD})
        assert r.status_code == 200, r.text


async def test_a_successful_login_resets_the_failures(api_app: Starlette, api_settings: Settings) -> None:
    limit = api_settings.login_limit_per_email
    async with client_for(api_app) as api:
        account = await new_account(api)
        for _ in range(2):
            for _ in range(limit - 1):
                r = await api.post(LOGIN, json={"email": account.email, "password": "wrong password"})
                assert r.status_code == 401
            r = await api.post(LOGIN, json={"email": account.email, "password": PASSWORD})
            assert r.status_code == 200, r.text


async def test_signups_are_limited_per_address(api_settings: Settings) -> None:
    app = create_app(replace(api_settings, signup_limit_per_ip=2))
    async with app.router.lifespan_context(app), client_for(app) as api, client_for(app) as elsewhere:
        for _ in range(2):
            r = await api.post(SIGNUP, json={"email": unique_email(), "password": PASSWORD})
            assert r.status_code == 201
        r = await api.post(SIGNUP, json={"email": unique_email(), "password": PASSWORD})
        assert (r.status_code, error_code(r)) == (429, "RATE_LIMITED")
        assert 0 < int(r.headers["retry-after"]) <= api_settings.signup_window_seconds
        r = await elsewhere.post(SIGNUP, json={"email": unique_email(), "password": PASSWORD})
        assert r.status_code == 201


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_hashing_is_bounded_and_the_next_signup_waits_for_a_slot(api_settings: Settings,
                                                                      pool: asyncpg.Pool) -> None:  # fmt: skip
    app = create_app(replace(api_settings, password_hash_concurrency=2))
    async with app.router.lifespan_context(app), client_for(app) as api:
        passwords: Passwords = app.state.services.passwords
        gate = threading.Event()
        busy = [asyncio.create_task(passwords.run(lambda: gate.wait(10))) for _ in range(2)]
        await until(lambda: passwords.running == 2)
        email = unique_email()
        signup = asyncio.create_task(api.post(SIGNUP, json={"email": email, "password": PASSWORD}))
        await until(lambda: passwords.waiting == 1)  # the third hash waits: it has not started
        assert passwords.running == 2 and not signup.done()
        assert await pool.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0
        gate.set()
        assert (await signup).status_code == 201
        await asyncio.gather(*busy)
        assert (passwords.running, passwords.waiting) == (0, 0)


async def test_reusing_any_replaced_refresh_token_ends_the_session(api: httpx.AsyncClient) -> None:
    account = await new_account(api)
    tokens = [account.refresh_token]
    for _ in range(3):
        r = await api.post(REFRESH, json={"refresh_token": tokens[-1]})
        assert r.status_code == 200
        tokens.append(r.json()["refresh_token"])
    access = r.json()["access_token"]
    r = await api.post(REFRESH, json={"refresh_token": tokens[0]})  # three generations back: a stolen copy
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    r = await api.post(REFRESH, json={"refresh_token": tokens[-1]})
    assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")
    assert (await api.get(ME, headers={"Authorization": f"Bearer {access}"})).status_code == 401


async def test_refresh_never_extends_a_session_past_its_max_age(api_settings: Settings, pool: asyncpg.Pool) -> None:
    app = create_app(replace(api_settings, session_max_age=3600))
    async with app.router.lifespan_context(app), client_for(app) as api:
        account = await new_account(api)
        r = await api.post(REFRESH, json={"refresh_token": account.refresh_token})
        assert r.status_code == 200
        tokens = r.json()
        session = await pool.fetchrow(
            "SELECT id, expires_at - created_at AS left FROM sessions WHERE user_id = $1", uuid.UUID(account.id)
        )
        assert session is not None and session["left"] <= dt.timedelta(hours=1)
        # The session began over an hour ago (as if the user had refreshed all along): it is over.
        await pool.execute("UPDATE sessions SET created_at = created_at - interval '61 minutes' WHERE id = $1",
                           session["id"])  # fmt: skip
        assert (await api.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})).status_code == 401
        r = await api.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert (r.status_code, error_code(r)) == (401, "AUTH_ERROR")


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
