"""The shell: sign up through the page, land on the workspaces list, create one, and reload (the session
comes back from the httpOnly cookie; the page holds no refresh token)."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Page, expect

from tests.web.conftest import Stack, axe_check, expect_text, no_problems, open_app, screenshot, sign_up


async def test_sign_up_create_a_workspace_and_reload(page: Page, stack: Stack) -> None:
    await open_app(page, "/")
    await expect(page).to_have_url(f"{stack.url}/login?next=%2F")
    await axe_check(page, "login")
    await screenshot(page, "login")
    await open_app(page, "/signup")
    await axe_check(page, "signup")
    await screenshot(page, "signup")

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

    # A workspace the user is not in, and a path the app does not know: said so, with a way back.
    await open_app(page, f"/w/{uuid.uuid4()}/keys")
    await expect_text(page, "No such workspace, or you are not a member of it")
    await open_app(page, "/w/anything/no-such-page")
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await page.get_by_role("link", name="Go to your workspaces").click()
    await expect(page.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
    no_problems(page)


async def test_workspaces_rename_archive_restore_switch_and_errors(page: Page, stack: Stack) -> None:
    await sign_up(page)
    taken = f"taken-{uuid.uuid4().hex[:6]}"
    for name, slug in (("First", taken), ("Second", f"second-{uuid.uuid4().hex[:6]}")):
        await open_app(page, "/workspaces")
        await page.get_by_label("Name", exact=True).fill(name)
        await page.get_by_label("Slug").fill(slug)
        await page.get_by_role("button", name="Create workspace").click()
        await expect(page.get_by_role("heading", name="API keys")).to_be_visible()

    # The switcher lists both and goes to the one chosen.
    await page.get_by_label("Switch workspace").select_option(label="First")
    await expect(page.get_by_role("navigation", name="Workspace").get_by_text("First")).to_be_visible()

    # A slug in use: the server's message and code, and nothing changed.
    await open_app(page, "/workspaces")
    await page.get_by_label("Name", exact=True).fill("Third")
    await page.get_by_label("Slug").fill(taken)
    await page.get_by_role("button", name="Create workspace").click()
    error = page.locator("form .error").filter(has_text="CONFLICT")
    await expect(error).to_be_visible()
    await expect(page.locator("#workspace-list tbody tr[data-workspace]")).to_have_count(2)

    # Rename: the row shows the server's answer.
    await page.get_by_role("button", name="Rename Second").click()
    edit = page.get_by_role("form", name="Rename Second")
    await edit.get_by_label("Name").fill("Second, renamed")
    await edit.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("row", name=re.compile("Second, renamed"))).to_be_visible()

    # Archive asks first (Escape cancels), then marks it archived; restore brings it back.
    await page.get_by_role("button", name="Archive Second, renamed").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    row = page.get_by_role("row", name=re.compile("Second, renamed"))
    await expect(row).to_contain_text("active")
    await page.get_by_role("button", name="Archive Second, renamed").click()
    await page.get_by_role("dialog").get_by_role("button", name="Archive").click()
    await expect(row).to_contain_text("archived")
    await axe_check(page, "workspaces")
    await screenshot(page, "workspaces-archived")
    await row.get_by_role("button", name="Restore Second, renamed").click()
    await expect(row).to_contain_text("active")

    # An org the user made with the API is listed with its plan and workspace count.
    org = f"Org {uuid.uuid4().hex[:6]}"
    base = await page.evaluate("() => document.querySelector('meta[name=eventplane-static]').content")
    await page.evaluate("async ([base, name]) => (await import(base + '/lib/api.js')).api('POST', '/orgs', { name })",
                        [base, org])  # fmt: skip
    await page.reload()
    await expect(page.locator(f'li[data-org="{org}"]')).to_contain_text("plan free · 0 of")
    no_problems(page)
