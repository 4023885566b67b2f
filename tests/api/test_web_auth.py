"""The dashboard's session cookie (api/auth_cookie.py): login with {"cookie": true} puts the refresh token
in an httpOnly SameSite=Strict cookie scoped to /api/v1/auth and keeps it out of the body; refresh and
logout by cookie need the CSRF header and a same-origin Origin (else 403 CSRF_REFUSED, and the cookie
still works); the JSON-token routes are unchanged for curl users."""

from __future__ import annotations

from dataclasses import replace
from http.cookies import SimpleCookie

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from eventplane.settings import Settings
from tests.api.conftest import PASSWORD, client_for, error_code, new_account

LOGIN, REFRESH, LOGOUT, ME = "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/me"
ORIGIN = "http://api.test"  # the in-process client's own origin
BROWSER = {"x-eventplane-csrf": "1", "origin": ORIGIN}


def set_cookie(r: httpx.Response) -> SimpleCookie:
    [header] = r.headers.get_list("set-cookie")
    cookie = SimpleCookie()
    cookie.load(header)
    return cookie


async def cookie_login(api: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    account = await new_account(api)
    r = await api.post(LOGIN, json={"email": account.email, "password": PASSWORD, "cookie": True}, headers=BROWSER)
    assert r.status_code == 200, r.text
    return account.email, r


async def test_a_cookie_login_keeps_the_refresh_token_out_of_the_body(api: httpx.AsyncClient) -> None:
    _, r = await cookie_login(api)
    body = r.json()
    assert body["refresh_token"] is None and body["access_token"]
    morsel = set_cookie(r)["ep_refresh"]
    assert morsel.value.startswith("ept_")
    assert morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/api/v1/auth"
    assert not morsel["secure"]  # the public URL is http here
    assert int(morsel["max-age"]) > 0
    me = await api.get(ME, headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"origin": ORIGIN}, {"x-eventplane-csrf": "1"}, {"x-eventplane-csrf": "1", "origin": "https://evil.example"},
     {"x-eventplane-csrf": "yes", "origin": ORIGIN}],
    ids=["no-header", "no-origin", "other-origin", "wrong-header"],
)  # fmt: skip
async def test_cookie_routes_refuse_requests_without_the_csrf_header_or_from_another_origin(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    account = await new_account(api)
    r = await api.post(LOGIN, json={"email": account.email, "password": PASSWORD, "cookie": True}, headers=headers)
    assert r.status_code == 403 and error_code(r) == "CSRF_REFUSED", r.text
    assert "set-cookie" not in r.headers
    await cookie_login(api)  # the client's jar now holds a valid cookie
    for path in (REFRESH, LOGOUT):
        r = await api.post(path, headers=headers)
        assert r.status_code == 403 and error_code(r) == "CSRF_REFUSED", (path, r.text)
        assert r.json()["error"]["message"]
    # Refused requests used nothing: the cookie still refreshes.
    r = await api.post(REFRESH, headers=BROWSER)
    assert r.status_code == 200, r.text


async def test_refresh_by_cookie_rotates_it_and_a_replayed_cookie_ends_the_session(api: httpx.AsyncClient) -> None:
    _, login = await cookie_login(api)
    first = set_cookie(login)["ep_refresh"].value
    r = await api.post(REFRESH, headers=BROWSER)
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] is None
    second = set_cookie(r)["ep_refresh"].value
    assert second != first
    token = r.json()["access_token"]
    assert (await api.get(ME, headers={"authorization": f"Bearer {token}"})).status_code == 200

    # The first cookie again (someone kept a copy): refused, its cookie cleared, and the session is over.
    api.cookies.set("ep_refresh", first, domain="api.test", path="/api/v1/auth")
    r = await api.post(REFRESH, headers=BROWSER)
    assert r.status_code == 401 and error_code(r) == "AUTH_ERROR"
    cleared = set_cookie(r)["ep_refresh"]
    assert cleared.value == "" and cleared["max-age"] == "0"
    api.cookies.set("ep_refresh", second, domain="api.test", path="/api/v1/auth")
    assert (await api.post(REFRESH, headers=BROWSER)).status_code == 401
    assert (await api.get(ME, headers={"authorization": f"Bearer {token}"})).status_code == 401


async def test_refresh_without_a_cookie_or_body_is_401(api: httpx.AsyncClient) -> None:
    r = await api.post(REFRESH, headers=BROWSER)
    assert r.status_code == 401 and error_code(r) == "AUTH_ERROR"
    assert "set-cookie" not in r.headers


async def test_logout_by_cookie_ends_the_session_and_clears_the_cookie(api: httpx.AsyncClient) -> None:
    _, login = await cookie_login(api)
    cookie = set_cookie(login)["ep_refresh"].value
    token = login.json()["access_token"]
    r = await api.post(LOGOUT, headers=BROWSER)
    assert r.status_code == 204
    assert set_cookie(r)["ep_refresh"]["max-age"] == "0"
    assert (await api.get(ME, headers={"authorization": f"Bearer {token}"})).status_code == 401
    api.cookies.set("ep_refresh", cookie, domain="api.test", path="/api/v1/auth")
    assert (await api.post(REFRESH, headers=BROWSER)).status_code == 401


async def test_the_json_tokens_are_unchanged_for_scripts(api: httpx.AsyncClient) -> None:
    account = await new_account(api)  # a body login: tokens in the body, no cookie
    r = await api.post(LOGIN, json={"email": account.email, "password": PASSWORD})
    assert r.json()["refresh_token"] and "set-cookie" not in r.headers
    r = await api.post(REFRESH, json={"refresh_token": r.json()["refresh_token"]})  # no CSRF header needed
    assert r.status_code == 200 and r.json()["refresh_token"] and "set-cookie" not in r.headers


async def test_the_public_url_origin_is_accepted_and_https_makes_the_cookie_secure(api_settings: Settings) -> None:
    app: Starlette = create_app(replace(api_settings, public_url="https://dash.example.com"))
    async with app.router.lifespan_context(app), client_for(app) as client:
        account = await new_account(client)
        headers = {"x-eventplane-csrf": "1", "origin": "https://dash.example.com"}
        r = await client.post(LOGIN, json={"email": account.email, "password": PASSWORD, "cookie": True},
                              headers=headers)  # fmt: skip
        assert r.status_code == 200, r.text
        assert set_cookie(r)["ep_refresh"]["secure"]
