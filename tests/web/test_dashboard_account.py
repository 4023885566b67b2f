"""The account pages in the browser: verify the email from its mailed link, see my sessions and end one,
change the password, log out, and reset a forgotten password from its mailed link."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.web.conftest import (
    PASSWORD,
    NewPage,
    Stack,
    axe_check,
    expect_text,
    log_in,
    mailed_link,
    no_problems,
    open_app,
    screenshot,
    sign_up,
)

NEW_PASSWORD = "an even longer passphrase"


async def test_verify_sessions_change_password_log_out(page: Page, new_page: NewPage, stack: Stack) -> None:
    email = await sign_up(page)
    other = await new_page()  # a second session of the same person
    await log_in(other, email)

    await open_app(page, "/account")
    await expect(page.get_by_role("heading", name="Account")).to_be_visible()
    await expect_text(page, "not verified")
    sessions = page.locator("#session-list tbody tr")
    await expect(sessions).to_have_count(2)
    await expect(sessions.filter(has_text="this session")).to_have_count(1)
    await axe_check(page, "account")
    await screenshot(page, "account")

    # The mailed verification link, opened in the same browser.
    link = await mailed_link(stack, email, "verify-email")
    await open_app(page, link)
    await expect_text(page, f"Thank you: {email} is verified.")
    await expect(page).to_have_url(f"{stack.url}/verify-email")  # the used token left the address bar
    await axe_check(page, "verify-email")
    await screenshot(page, "verify-email")
    await open_app(page, "/account")
    await expect(page.locator("main .badge", has_text="verified")).to_have_text("verified")

    # End the other session from here: the other browser is sent to the login page on its next call.
    others = sessions.filter(has_not_text="this session")
    await others.get_by_role("button", name=re.compile("^End the session")).click()
    await expect_text(page, "Session ended")
    await expect(sessions).to_have_count(1)
    await other.get_by_role("navigation", name="Account").get_by_role("link", name=email).click()
    await expect(other.get_by_role("heading", name="Log in to EventPlane")).to_be_visible()
    await expect_text(other, "Your session has ended")

    # A wrong current password is refused with the server's message; the right one changes it.
    await page.get_by_label("Current password").fill("not my password")
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    password_form = page.locator("form", has=page.get_by_role("heading", name="Change password"))
    await expect(password_form.locator(".error")).to_contain_text("Your current password is wrong")
    await expect(password_form.locator(".error")).to_contain_text("WRONG_PASSWORD")
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect_text(page, "Password changed")

    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="Log in to EventPlane")).to_be_visible()
    await page.reload()  # the cookie is gone too: still logged out after a reload
    await expect(page.get_by_role("heading", name="Log in to EventPlane")).to_be_visible()
    await log_in(page, email, password=NEW_PASSWORD)
    no_problems(page)


async def test_forgot_and_reset_password(page: Page, new_page: NewPage, stack: Stack) -> None:
    email = await sign_up(page)
    await page.get_by_role("button", name="Log out").click()
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Mail me a link").click()
    await expect_text(page, f"If {email} has an account, a link is on its way.")
    await axe_check(page, "forgot-password")
    await screenshot(page, "forgot-password")

    link = await mailed_link(stack, email, "reset-password")
    await open_app(page, link)
    await axe_check(page, "reset-password")
    await screenshot(page, "reset-password")
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set password").click()
    await expect_text(page, "Your password is changed.")
    await expect(page).to_have_url(f"{stack.url}/reset-password")

    # The link works once: opened again, the server's refusal is shown.
    await open_app(page, link)
    await page.get_by_label("New password").fill("yet another passphrase")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.locator("form .error")).to_be_visible()
    await expect(page.locator("form .error code")).not_to_be_empty()

    await log_in(page, email, password=NEW_PASSWORD)
    no_problems(page)
