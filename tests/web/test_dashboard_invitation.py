"""Accepting an invitation from its mailed link: logged in as someone else, the server's refusal is shown;
logged out, the login link comes back to the invitation, which the invited person then accepts."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import expect

from tests.web.conftest import (
    NewPage,
    Stack,
    axe_check,
    expect_text,
    log_in,
    mailed_link,
    no_problems,
    open_app,
    sign_up,
)


async def test_the_wrong_account_is_refused_and_the_right_one_accepts(new_page: NewPage, stack: Stack) -> None:
    owner, invitee, stranger = await new_page(), await new_page(), await new_page()
    await sign_up(owner)
    await owner.get_by_label("Name", exact=True).fill("Invites")
    await owner.get_by_label("Slug").fill(f"invites-{uuid.uuid4().hex[:6]}")
    await owner.get_by_role("button", name="Create workspace").click()
    await owner.get_by_role("navigation", name="Workspace").get_by_role("link", name="Members").click()
    address = await sign_up(invitee)  # has an account already
    await invitee.get_by_role("button", name="Log out").click()
    await owner.get_by_label("Email address").fill(address)
    await owner.get_by_role("button", name="Send invitation").click()
    await expect(owner.locator(f'tr[data-invitation="{address}"]')).to_be_visible()
    link = await mailed_link(stack, address, "invitations/accept")

    await sign_up(stranger)
    await open_app(stranger, link)
    await stranger.get_by_role("button", name="Accept invitation").click()
    await expect_text(stranger, "This invitation is for another email address")
    await expect(stranger.locator("main .error code")).to_have_text("FORBIDDEN")
    await axe_check(stranger, "invitation refused")

    await open_app(invitee, link)
    await invitee.get_by_role("link", name="Log in").click()
    await log_in(invitee, address, path=invitee.url.removeprefix(stack.url))
    await invitee.get_by_role("button", name="Accept invitation").click()
    await expect(invitee.get_by_role("navigation", name="Workspace").get_by_text("Invites")).to_be_visible()
    await owner.reload()
    role = owner.locator(f'tr[data-member="{address}"]').get_by_label(re.compile("^Role of"))
    await expect(role).to_have_value("DEVELOPER")
    for page in (owner, invitee, stranger):
        no_problems(page)
