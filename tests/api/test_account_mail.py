"""Each account flow followed through a real SMTP server (aiosmtpd, in process): signup -> verify,
invite -> mail -> accept, forgot -> reset (old sessions end), change password, change email, my sessions,
and the invitation takeover that verification closes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from api.app import create_app
from eventplane.settings import Secret, Settings
from tests.api.conftest import PASSWORD, ApiClient, client_for, error_code, new_account, new_workspace, unique_email
from tests.api.mailbox import SmtpServer, own_outbox, token_in, verify_by_mail, wait_for_mail

WS = "/api/v1/workspaces"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    if server.controller is not None:
        server.stop()


@pytest_asyncio.fixture(scope="module")
async def mail_app(server_urls: tuple[str, str], api_settings: Settings, smtp: SmtpServer) -> AsyncIterator[Starlette]:
    # A database of its own: waiting for a message never means delivering the rest of the suite's mail first.
    async with own_outbox(server_urls[0], api_settings) as (own, _):
        app = create_app(replace(own, smtp_url=Secret(smtp.url), public_url="https://ep.example",
                                 mail_retry_base=0.05))  # fmt: skip
        async with app.router.lifespan_context(app):
            yield app


@pytest_asyncio.fixture
async def api(mail_app: Starlette) -> AsyncIterator[ApiClient]:
    async with client_for(mail_app) as client:
        yield client


async def test_signup_mails_a_link_that_verifies_the_address_once(api: ApiClient, smtp: SmtpServer) -> None:
    user = await new_account(api)
    assert (await api.get("/api/v1/me", headers=user.headers)).json()["email_verified"] is False
    [message] = await wait_for_mail(api.app, smtp.inbox, user.email)
    assert message["Subject"] == "Verify your email address"
    assert "https://ep.example/verify-email?token=" in str(message.get_body(("plain",)))
    token = token_in(message, "verify-email")
    r = await api.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status_code == 200 and r.json()["email_verified"] is True
    assert (await api.get("/api/v1/me", headers=user.headers)).json()["email_verified"] is True
    r = await api.post("/api/v1/auth/verify-email", json={"token": token})
    assert (r.status_code, error_code(r)) == (404, "INVALID_TOKEN")
    r = await api.post("/api/v1/me/verify-email/resend", headers=user.headers)
    assert (r.status_code, error_code(r)) == (409, "CONFLICT")


async def test_resent_verification_replaces_the_first_link(api: ApiClient, smtp: SmtpServer) -> None:
    user = await new_account(api)
    [first] = await wait_for_mail(api.app, smtp.inbox, user.email)
    assert (await api.post("/api/v1/me/verify-email/resend", headers=user.headers)).status_code == 202
    [_, second] = await wait_for_mail(api.app, smtp.inbox, user.email, 2)
    r = await api.post("/api/v1/auth/verify-email", json={"token": token_in(first, "verify-email")})
    assert (r.status_code, error_code(r)) == (404, "INVALID_TOKEN")
    r = await api.post("/api/v1/auth/verify-email", json={"token": token_in(second, "verify-email")})
    assert r.status_code == 200


async def test_invitation_arrives_by_mail_and_accepting_verifies(api: ApiClient, smtp: SmtpServer) -> None:
    owner = await new_account(api, name="Olive Owner")
    ws = await new_workspace(api, owner)
    guest = await new_account(api)
    r = await api.post(f"{WS}/{ws['id']}/invites", json={"email": guest.email, "role": "DEVELOPER"},
                       headers=owner.headers)  # fmt: skip
    assert r.status_code == 201 and r.json()["token"].startswith("epi_")
    messages = await wait_for_mail(api.app, smtp.inbox, guest.email, 2)
    [invitation] = [m for m in messages if "invited you" in m["Subject"]]
    assert invitation["Subject"] == f"Olive Owner invited you to {ws['name']} on EventPlane"
    token = token_in(invitation, "invitations/accept")
    assert token == r.json()["token"]
    listed = (await api.get(f"{WS}/{ws['id']}/invites", headers=owner.headers)).json()["items"]
    assert [(i["email"], i["invited_by"]["email"]) for i in listed] == [(guest.email, owner.email)]
    r = await api.post(f"{WS}/invites/{token}/accept", headers=guest.headers)
    assert r.status_code == 200 and r.json()["member"]["role"] == "DEVELOPER"
    assert (await api.get("/api/v1/me", headers=guest.headers)).json()["email_verified"] is True


async def test_resend_mails_a_new_token_and_is_rate_limited(api: ApiClient, smtp: SmtpServer) -> None:
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    email = unique_email("invitee")
    first = (await api.post(f"{WS}/{ws['id']}/invites", json={"email": email}, headers=owner.headers)).json()
    resend = f"{WS}/{ws['id']}/invites/{first['id']}/resend"
    r = await api.post(resend, headers=owner.headers)
    assert r.status_code == 200 and r.json()["token"] != first["token"]
    [_, again] = await wait_for_mail(api.app, smtp.inbox, email, 2)
    assert token_in(again, "invitations/accept") == r.json()["token"]
    invitee = await new_account(api, email=email)
    r = await api.post(f"{WS}/invites/{first['token']}/accept", headers=invitee.headers)
    assert r.status_code == 404  # the replaced link stopped
    for _ in range(2):
        assert (await api.post(resend, headers=owner.headers)).status_code == 200
    r = await api.post(resend, headers=owner.headers)
    assert (r.status_code, error_code(r)) == (429, "RATE_LIMITED") and "retry-after" in r.headers


async def test_an_early_signup_with_the_invitees_address_sees_nothing(api: ApiClient, smtp: SmtpServer) -> None:
    """The takeover: someone signs up first with the invitee's address. Unverified, they cannot list or
    decline the invitation, and verifying needs the link that went to the real mailbox."""
    owner = await new_account(api)
    ws = await new_workspace(api, owner)
    victim = unique_email("victim")
    squatter = await new_account(api, email=victim)
    invite = (await api.post(f"{WS}/{ws['id']}/invites", json={"email": victim, "role": "ADMIN"},
                             headers=owner.headers)).json()  # fmt: skip
    pending = await api.get(f"{WS}/invitations/pending", headers=squatter.headers)
    assert pending.status_code == 200 and pending.json()["items"] == []
    r = await api.delete(f"{WS}/invitations/{invite['id']}", headers=squatter.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    r = await api.post("/api/v1/auth/verify-email", json={"token": "epv_guessed"})
    assert (r.status_code, error_code(r)) == (404, "INVALID_TOKEN")
    assert (await api.get(f"{WS}/{ws['id']}/invites", headers=owner.headers)).json()["items"] != []
    # Whoever reads the mailbox verifies, and only then sees the invitation.
    [verification] = [m for m in await wait_for_mail(api.app, smtp.inbox, victim, 2) if "Verify" in m["Subject"]]
    assert (await api.post("/api/v1/auth/verify-email",
                           json={"token": token_in(verification, "verify-email")})).status_code == 200  # fmt: skip
    items = (await api.get(f"{WS}/invitations/pending", headers=squatter.headers)).json()["items"]
    assert [i["id"] for i in items] == [invite["id"]]


async def test_forgot_then_reset_ends_every_session(api: ApiClient, smtp: SmtpServer) -> None:
    user = await new_account(api)
    other = await api.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    unknown = unique_email("nobody")
    answers = [await api.post("/api/v1/auth/forgot-password", json={"email": e}) for e in (user.email, unknown)]
    assert [(a.status_code, a.json()) for a in answers] == [(202, {"status": "sent"})] * 2
    [reset] = [m for m in await wait_for_mail(api.app, smtp.inbox, user.email, 2) if "Reset" in m["Subject"]]
    assert smtp.inbox.to(unknown) == []
    token = token_in(reset, "reset-password")
    r = await api.post("/api/v1/auth/reset-password", json={"token": token, "password": "a brand new passphrase"})
    assert r.status_code == 204
    assert (await api.get("/api/v1/me", headers=user.headers)).status_code == 401
    r = await api.post("/api/v1/auth/refresh", json={"refresh_token": other.json()["refresh_token"]})
    assert r.status_code == 401
    r = await api.post("/api/v1/auth/reset-password", json={"token": token, "password": "yet another passphrase"})
    assert (r.status_code, error_code(r)) == (404, "INVALID_TOKEN")
    r = await api.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 401
    r = await api.post("/api/v1/auth/login", json={"email": user.email, "password": "a brand new passphrase"})
    assert r.status_code == 200


async def test_change_password_needs_the_current_one_and_ends_other_sessions(api: ApiClient) -> None:
    user = await new_account(api)
    other = await new_login(api, user.email, PASSWORD)
    r = await api.post("/api/v1/me/password", json={"current_password": "not it at all", "new_password": "x" * 12},
                       headers=user.headers)  # fmt: skip
    assert (r.status_code, error_code(r)) == (403, "WRONG_PASSWORD")
    r = await api.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "n" * 12},
                       headers=user.headers)  # fmt: skip
    assert r.status_code == 204
    assert (await api.get("/api/v1/me", headers=user.headers)).status_code == 200
    assert (await api.get("/api/v1/me", headers=other)).status_code == 401
    assert (await api.post("/api/v1/auth/login", json={"email": user.email, "password": "n" * 12})).status_code == 200


async def new_login(api: httpx.AsyncClient, email: str, password: str, agent: str = "test") -> dict[str, str]:
    r = await api.post("/api/v1/auth/login", json={"email": email, "password": password},
                       headers={"user-agent": agent})  # fmt: skip
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_change_email_is_confirmed_at_the_new_address(api: ApiClient, smtp: SmtpServer) -> None:
    user = await new_account(api)
    new = unique_email("moved")
    r = await api.post("/api/v1/me/email", json={"email": new, "password": "wrong password"}, headers=user.headers)
    assert (r.status_code, error_code(r)) == (403, "WRONG_PASSWORD")
    r = await api.post("/api/v1/me/email", json={"email": new, "password": PASSWORD}, headers=user.headers)
    assert r.status_code == 202
    assert (await api.get("/api/v1/me", headers=user.headers)).json()["email"] == user.email  # not yet
    [message] = await wait_for_mail(api.app, smtp.inbox, new)
    r = await api.post("/api/v1/auth/confirm-email", json={"token": token_in(message, "confirm-email")})
    assert r.status_code == 200 and (r.json()["email"], r.json()["email_verified"]) == (new, True)
    assert (await api.post("/api/v1/auth/login", json={"email": new, "password": PASSWORD})).status_code == 200
    assert (await api.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})).status_code == 401


async def test_my_sessions_list_and_end(api: ApiClient) -> None:
    user = await new_account(api)
    phone = await new_login(api, user.email, PASSWORD, "Phone/1.0")
    laptop = await new_login(api, user.email, PASSWORD, "Laptop/2.0")
    r = await api.get("/api/v1/me/sessions", headers=laptop)
    sessions = r.json()
    assert r.status_code == 200 and len(sessions) == 3
    assert {s["client"] for s in sessions} >= {"Phone/1.0", "Laptop/2.0"}
    [current] = [s for s in sessions if s["current"]]
    assert current["client"] == "Laptop/2.0"
    [phone_session] = [s for s in sessions if s["client"] == "Phone/1.0"]
    assert (await api.delete(f"/api/v1/me/sessions/{phone_session['id']}", headers=laptop)).status_code == 204
    assert (await api.get("/api/v1/me", headers=phone)).status_code == 401
    r = await api.delete(f"/api/v1/me/sessions/{phone_session['id']}", headers=laptop)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    assert (await api.delete("/api/v1/me/sessions", headers=laptop)).status_code == 204
    assert (await api.get("/api/v1/me", headers=user.headers)).status_code == 401
    assert [s["current"] for s in (await api.get("/api/v1/me/sessions", headers=laptop)).json()] == [True]


async def test_the_operator_can_require_a_verified_email(server_urls: tuple[str, str], api_settings: Settings) -> None:
    async with own_outbox(server_urls[0], api_settings) as (own, _):
        await _require_verified(create_app(replace(own, require_verified_email=True)))


async def _require_verified(app: Starlette) -> None:
    async with app.router.lifespan_context(app), client_for(app) as api:
        user = await new_account(api)
        r = await api.post(WS, json={"name": "Acme", "slug": unique_email("s").split("@")[0]}, headers=user.headers)
        assert (r.status_code, error_code(r)) == (403, "EMAIL_NOT_VERIFIED")
        await verify_by_mail(api, app, user.email)
        ws = await new_workspace(api, user)
        r = await api.post(f"{WS}/{ws['id']}/api-keys", json={"name": "k", "scopes": ["write"]}, headers=user.headers)
        assert r.status_code == 201


async def test_my_sessions_routes_are_rate_limited_per_user(api: ApiClient) -> None:
    user = await new_account(api)
    for _ in range(60):
        assert (await api.get("/api/v1/me/sessions", headers=user.headers)).status_code == 200
    r = await api.delete("/api/v1/me/sessions", headers=user.headers)
    assert (r.status_code, error_code(r)) == (429, "RATE_LIMITED") and int(r.headers["retry-after"]) >= 1


async def test_forgot_password_is_rate_limited_per_address(api: ApiClient) -> None:
    email = unique_email("forgetful")
    for _ in range(5):
        assert (await api.post("/api/v1/auth/forgot-password", json={"email": email})).status_code == 202
    r = await api.post("/api/v1/auth/forgot-password", json={"email": email})
    assert (r.status_code, error_code(r)) == (429, "RATE_LIMITED")
