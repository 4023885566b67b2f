"""The shell: sign up through the page, land on the workspaces list, create one, and reload (the session
comes back from the httpOnly cookie; the page holds no refresh token)."""

from __future__ import annotations

import uuid

from playwright.async_api import Page, expect

from tests.web.conftest import Stack, axe_check, expect_text, no_problems, open_app, screenshot, sign_up


async def test_sign_up_create_a_workspace_and_reload(page: Page, stack: Stack) -> None:
    await open_app(page, "/")
    await expect(page).to_have_url(f"{stack.url}/login?next=%2F")
    await axe_check(page, "login")
    await screenshot(page, "login")

    await sign_up(page)
    await expect_text(page, "You belong to no workspace yet")
    await axe_check(page, "workspaces (empty)")

    slug = f"acme-{uuid.uuid4().hex[:6]}"
    await page.get_by_label("Name", exact=True).fill("Acme Inc")
    await page.get_by_label("Slug").fill(slug)
    await page.get_by_role("button", name="Create workspace").click()
    await expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Workspace").get_by_text("Acme Inc")).to_be_visible()

    cookies = await page.context.cookies()
    [refresh] = [c for c in cookies if c["name"] == "ep_refresh"]
    assert refresh["httpOnly"] and refresh["sameSite"] == "Strict" and refresh["path"] == "/api/v1/auth"
    assert await page.evaluate("document.cookie") == ""  # nothing a script can read

    await page.reload()
    await expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    no_problems(page)
