"""The issue's flow through the dashboard, as a person sees it: sign up, create a workspace, create a key
(shown once, with a copy button), send a test event with it from the page (it arrives in live events and
in the usage chart), invite a member who accepts from the mailed link in a browser of their
own, change their role, rotate the key (the old one stops at the edge) and revoke it (the new one stops).
axe-core and a screenshot on each page."""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import httpx
from playwright.async_api import Page, expect

from tests.web.conftest import (
    PASSWORD,
    NewPage,
    Stack,
    axe_check,
    expect_text,
    mailed_link,
    no_problems,
    open_app,
    screenshot,
    sign_up,
)
from tests.web.data_steps import see_it_in_usage, see_it_live, send_test_event

KEY = re.compile(r"^ep_live_[0-9A-Za-z]{38}$")


async def edge_status(stack: Stack, key: str) -> int:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as client:
        r = await client.post("/api/v1/tracking/track", headers={"x-api-key": key},
                              json={"event_type": "web_test", "user_id": "u1"})  # fmt: skip
        return r.status_code


async def edge_answers(stack: Stack, key: str, status: int) -> None:
    """Poll the edge with `key` until it answers `status` (key changes reach it within a second)."""
    deadline = time.monotonic() + 5
    while (got := await edge_status(stack, key)) != status:
        assert time.monotonic() < deadline, f"the edge still answers {got} for the key, not {status}"


async def create_workspace(page: Page, name: str) -> str:
    slug = f"{name.lower().split()[0]}-{uuid.uuid4().hex[:6]}"
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Slug").fill(slug)
    await page.get_by_role("button", name="Create workspace").click()
    await expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    return slug


async def create_key(page: Page, name: str) -> str:
    await page.get_by_label("Key name").fill(name)
    await page.get_by_role("button", name="Create key").click()
    panel = page.locator("section.secret")
    await expect(panel.get_by_role("heading", name=f"New key {name}")).to_be_visible()
    await expect(panel).to_contain_text("shown only once")
    key = (await panel.locator("code.key-secret").inner_text()).strip()
    assert KEY.match(key), key
    return key


async def test_key_member_rotate_revoke_flow(page: Page, new_page: NewPage, stack: Stack) -> None:
    await sign_up(page)
    await screenshot(page, "workspaces")
    await create_workspace(page, "Acme Inc")
    await axe_check(page, "keys (empty)")

    # A key, shown once, with a copy button that copies exactly it.
    key = await create_key(page, "backend")
    await page.get_by_role("button", name="Copy key").click()
    await expect_text(page, "Copied to the clipboard")
    assert await page.evaluate("navigator.clipboard.readText()") == key
    row = page.locator("tr[data-key=backend]")
    await expect(row).to_contain_text("track:write")
    await expect(row.locator(".last-used")).to_have_text("never")
    await axe_check(page, "keys (new key shown)")
    await screenshot(page, "keys")
    assert await edge_status(stack, key) == 202

    # Send a test event from the page with the key just created (the JS SDK in the page; the key is kept in
    # the page's memory only): it arrives in live events and in the usage chart (tests/web/data_steps.py).
    await page.locator("section.secret").get_by_role("link", name="Send a test event with it").click()
    await expect(page.get_by_label("API key (scope track:write)")).to_have_value(key)
    message_id = await send_test_event(page, "first_event")
    await see_it_live(page, message_id, "first_event")
    await see_it_in_usage(page, "first_event")
    await page.get_by_role("navigation", name="Workspace").get_by_role("link", name="API keys").click()

    # Shown once: after a reload the page has no way to show it again; last use reads "3 minutes ago".
    used = "UPDATE api_keys SET last_used_at = now() - interval '3 minutes' WHERE key_hash = $1"
    assert await stack.pool.execute(used, hashlib.sha256(key.encode()).hexdigest()) == "UPDATE 1"
    await page.reload()
    await expect(row.locator(".last-used")).to_have_text("3 minutes ago")
    assert key not in await page.content()

    # Invite Grace; she accepts from the mailed link in a browser of her own, after signing up.
    workspace_url = page.url
    await page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Members").click()
    await expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    grace = f"grace-{uuid.uuid4().hex[:8]}@example.test"
    await page.get_by_label("Email address").fill(grace)
    await page.get_by_label("Role", exact=True).select_option("DEVELOPER")
    await page.get_by_role("button", name="Send invitation").click()
    invited = page.locator(f'tr[data-invitation="{grace}"]')
    await expect(invited).to_contain_text("Developer")
    await axe_check(page, "members")
    await screenshot(page, "members")

    link = await mailed_link(stack, grace, "invitations/accept")
    other = await new_page()
    await open_app(other, link)
    await expect_text(other, "Log in (or create an account)")
    await axe_check(other, "invitation (logged out)")
    await other.get_by_role("link", name="Create an account").click()
    await other.get_by_label("Your name").fill("Grace Hopper")
    await other.get_by_label("Email").fill(grace)
    await other.get_by_label("Password").fill(PASSWORD)
    await other.get_by_role("button", name="Create account").click()
    await expect(other.get_by_role("button", name="Accept invitation")).to_be_visible()
    await axe_check(other, "invitation")
    await screenshot(other, "invitation")
    await other.get_by_role("button", name="Accept invitation").click()
    await expect(other.get_by_role("heading", name="API keys")).to_be_visible()
    await expect(other.get_by_role("navigation", name="Workspace").get_by_text("Acme Inc")).to_be_visible()
    no_problems(other)

    # Ada sees Grace as a member (no longer invited) and makes her a VIEWER.
    await page.reload()
    member = page.locator(f'tr[data-member="{grace}"]')
    await expect(member).to_be_visible()
    await expect(invited).to_have_count(0)
    await member.get_by_label(re.compile("Role of")).select_option("VIEWER")
    await member.get_by_role("button", name=re.compile("Change role")).click()
    await expect_text(page, f"{grace} is now Viewer")
    await page.reload()  # what the server holds, not what the page last showed
    await expect(member.get_by_label(re.compile("Role of"))).to_have_value("VIEWER")

    # Rotate with no grace: a new key is shown once; the edge refuses the old one at once.
    await open_app(page, workspace_url.removeprefix(stack.url))
    await page.get_by_role("button", name="Rotate backend").click()
    await page.get_by_label("Grace period").select_option("0")
    await page.get_by_role("button", name="Rotate key").click()
    panel = page.locator("section.secret")
    await expect(panel).to_contain_text("The old key has stopped working.")
    new_key = (await panel.locator("code.key-secret").inner_text()).strip()
    assert KEY.match(new_key) and new_key != key
    await edge_answers(stack, key, 401)
    assert await edge_status(stack, new_key) == 202
    await expect(page.locator("tr[data-key=backend]")).to_have_count(2)  # the new one and the old, revoked

    # Revoke: a confirmation dialog, then the row says revoked and the edge refuses the key.
    active = page.locator("tr[data-key=backend]").filter(has=page.get_by_role("button", name="Revoke backend"))
    await active.get_by_role("button", name="Revoke backend").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Revoke backend?")
    await axe_check(page, "revoke dialog")
    await dialog.get_by_role("button", name="Revoke").click()
    await expect_text(page, "backend revoked")
    await expect(page.get_by_role("button", name="Revoke backend")).to_have_count(0)
    await edge_answers(stack, new_key, 401)
    no_problems(page)
