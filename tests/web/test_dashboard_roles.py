"""Each person sees the controls their role allows: a VIEWER, a DEVELOPER and an ADMIN of one workspace open
the keys, members and flags pages (and a flag's page) in browsers of their own and find exactly the buttons
and forms of the writes their role may make, with one sentence saying their role when some are hidden.
A page left open while the role is lowered still shows the server's 403. axe-core and a screenshot on each
page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import (
    PASSWORD,
    NewPage,
    Stack,
    axe_check,
    expect_text,
    log_in,
    no_problems,
    open_app,
    screenshot,
)


@dataclass
class Person:
    email: str
    headers: dict[str, str]


@dataclass
class Team:
    workspace_id: str
    name: str
    owner: Person
    members: dict[str, Person]  # by role
    member_ids: dict[str, str]  # by email


async def _person(api: httpx.AsyncClient, role: str) -> Person:
    email = f"roles-{role.lower()}-{uuid.uuid4().hex[:8]}@example.test"
    r = await api.post("/auth/signup", json={"email": email, "password": PASSWORD, "name": role.title()})
    assert r.status_code == 201, r.text
    r = await api.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return Person(email, {"Authorization": f"Bearer {r.json()['access_token']}"})


async def _ok(answer: Any, status: int = 201) -> Any:
    r = await answer
    assert r.status_code == status, r.text
    return r.json()


async def make_team(stack: Stack) -> Team:
    """Through the API (the pages are what is under test): an OWNER's workspace with a key, an admin-scope
    key, a flag, a pending invitation, and one member of each other role, joined by accepting an invitation."""
    async with httpx.AsyncClient(base_url=stack.url + "/api/v1", timeout=10) as api:
        owner = await _person(api, "OWNER")
        name = f"Roles {uuid.uuid4().hex[:6]}"
        ws = await _ok(api.post("/workspaces", json={"name": name, "slug": name.lower().replace(" ", "-")},
                                headers=owner.headers))  # fmt: skip
        base = f"/workspaces/{ws['id']}"
        await _ok(api.post(f"{base}/api-keys", json={"name": "backend", "scopes": ["write"]}, headers=owner.headers))
        await _ok(api.post(f"{base}/api-keys", json={"name": "ops", "scopes": ["admin"]}, headers=owner.headers))
        await _ok(api.post(f"{base}/feature-flags", json={"key": "checkout"}, headers=owner.headers))
        await _ok(api.post(f"{base}/invites", json={"email": "pending@example.test", "role": "VIEWER"},
                           headers=owner.headers))  # fmt: skip
        members = {}
        for role in ("ADMIN", "DEVELOPER", "VIEWER"):
            person = members[role] = await _person(api, role)
            invite = await _ok(api.post(f"{base}/invites", json={"email": person.email, "role": role},
                                        headers=owner.headers))  # fmt: skip
            await _ok(api.post(f"/workspaces/invites/{invite['token']}/accept", headers=person.headers), 200)
        listed = await _ok(api.get(f"{base}/members", headers=owner.headers), 200)
        ids = {m["email"]: m["id"] for m in listed["items"]}
    return Team(ws["id"], name, owner, members, ids)


async def visible(page: Page, role: str, name: str, present: bool, exact: bool = True) -> None:
    """A control named `name` is there (or not), as a person or a screen reader finds it."""
    control = page.get_by_role(role, name=name, exact=exact)  # type: ignore[arg-type]
    if present:
        await expect(control.first).to_be_visible()
    else:
        await expect(control).to_have_count(0)


NOTICES = {
    "VIEWER": "You are a Viewer in this workspace: you can look, not change.",
    "DEVELOPER": "You are a Developer in this workspace: you can work on keys, flags and experiments",
}


async def notice(page: Page, role: str, shown: bool) -> None:
    box = page.locator("p.role-notice")
    if shown:
        await expect(box).to_have_count(1)
        await expect(box).to_contain_text(NOTICES[role])
        await expect(box).to_contain_text("Ask an admin or owner of the workspace if you need another role.")
    else:
        await expect(box).to_have_count(0)


async def keys_page(page: Page, team: Team, role: str) -> None:
    await open_app(page, f"/w/{team.workspace_id}/keys")
    await expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    await expect(page.locator("tr[data-key=backend]")).to_be_visible()  # reads stay
    await expect(page.locator("tr[data-key=ops]")).to_be_visible()
    writer = role in ("DEVELOPER", "ADMIN")
    await notice(page, role, shown=role == "VIEWER")
    await visible(page, "button", "Create key", writer)
    await visible(page, "textbox", "Key name", writer)
    await visible(page, "button", "Rotate backend", writer)
    await visible(page, "button", "Revoke backend", writer)
    await visible(page, "columnheader", "Actions", writer)
    # Keys with the admin scope: managed by an ADMIN or OWNER only.
    await visible(page, "button", "Rotate ops", role == "ADMIN")
    await visible(page, "button", "Revoke ops", role == "ADMIN")
    await expect(page.locator("input[name=scopes][value=admin]")).to_have_count(1 if role == "ADMIN" else 0)
    await axe_check(page, f"keys ({role})")
    await screenshot(page, f"roles-keys-{role.lower()}")


async def members_page(page: Page, team: Team, role: str) -> None:
    me = team.members[role]
    await open_app(page, f"/w/{team.workspace_id}/members")
    await expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    await expect(page.locator("tr[data-invitation='pending@example.test']")).to_be_visible()  # reads stay
    admin = role == "ADMIN"
    await notice(page, role, shown=not admin)
    await visible(page, "button", "Send invitation", admin)
    await visible(page, "heading", "Invite someone", admin)
    await visible(page, "button", "Resend the invitation to pending@example.test", admin)
    await visible(page, "button", "Cancel the invitation to pending@example.test", admin)
    for other_role, other in team.members.items():
        if other is me:
            continue
        label = f"{other_role.title()} ({other.email})"
        # An ADMIN changes and removes the members at or below ADMIN, never their own role.
        await visible(page, "combobox", f"Role of {label}", admin)
        await visible(page, "button", f"Change role of {label}", admin)
        await visible(page, "button", f"Remove {label}", admin)
    owner_label = f"Owner ({team.owner.email})"
    for name in (f"Role of {owner_label}", f"Change role of {owner_label}", f"Remove {owner_label}"):
        await visible(page, "combobox" if name.startswith("Role") else "button", name, False)
    my_label = f"{role.title()} ({me.email})"
    await visible(page, "combobox", f"Role of {my_label}", False)
    await visible(page, "button", f"Change role of {my_label}", False)
    await visible(page, "button", f"Leave {team.name}", True)  # anyone may leave
    if admin:  # nobody grants a role above their own
        options = await page.get_by_label("Role", exact=True).locator("option").all_inner_texts()
        assert options == ["Admin", "Developer", "Viewer"], options
    await axe_check(page, f"members ({role})")
    await screenshot(page, f"roles-members-{role.lower()}")


async def flags_pages(page: Page, team: Team, role: str) -> None:
    writer = role in ("DEVELOPER", "ADMIN")
    await open_app(page, f"/w/{team.workspace_id}/flags")
    await expect(page.get_by_role("heading", name="Feature flags", exact=True)).to_be_visible()
    await expect(page.get_by_role("link", name="checkout")).to_be_visible()  # reads stay
    await notice(page, role, shown=not writer)
    await visible(page, "button", "Create flag", writer)
    await visible(page, "heading", "Create a flag", writer)
    await axe_check(page, f"flags ({role})")
    await screenshot(page, f"roles-flags-{role.lower()}")

    await page.get_by_role("link", name="checkout").click()
    await expect(page.get_by_role("heading", name="Flag checkout")).to_be_visible()
    await expect_text(page, "This flag is")  # reads stay: its state, facts and audit log
    await expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    await notice(page, role, shown=not writer)
    for name in ("Enable", "Save rollout", "Save details and rules", "Add rule", "Delete flag"):
        await visible(page, "button", name, writer)
    await visible(page, "slider", "Rollout (share of units that get the flag)", writer)
    await axe_check(page, f"flag ({role})")
    await screenshot(page, f"roles-flag-{role.lower()}")


@pytest.mark.parametrize("role", ["VIEWER", "DEVELOPER", "ADMIN"])
async def test_each_role_sees_the_controls_it_may_use(new_page: NewPage, stack: Stack, role: str) -> None:
    team = await make_team(stack)
    page = await new_page()
    await log_in(page, team.members[role].email)
    await keys_page(page, team, role)
    await members_page(page, team, role)
    await flags_pages(page, team, role)
    no_problems(page)


async def test_a_page_left_open_while_the_role_is_lowered_shows_the_servers_refusal(new_page: NewPage, stack: Stack
                                                                                   ) -> None:  # fmt: skip
    team = await make_team(stack)
    developer = team.members["DEVELOPER"]
    page = await new_page()
    await log_in(page, developer.email)
    await open_app(page, f"/w/{team.workspace_id}/keys")
    await page.get_by_label("Key name").fill("late")
    # Another tab (the owner's) lowers the role meanwhile.
    async with httpx.AsyncClient(base_url=stack.url + "/api/v1", timeout=10) as api:
        await _ok(api.patch(f"/workspaces/{team.workspace_id}/members/{team.member_ids[developer.email]}",
                            json={"role": "VIEWER"}, headers=team.owner.headers), 200)  # fmt: skip
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("alert")).to_contain_text("Your role (VIEWER) lacks the permission 'api_keys:write'")
    await expect(page.get_by_role("alert")).to_contain_text("FORBIDDEN")
    # The next page it opens knows the new role.
    await open_app(page, f"/w/{team.workspace_id}/flags")
    await notice(page, "VIEWER", shown=True)
    await visible(page, "button", "Create flag", False)
    no_problems(page)
