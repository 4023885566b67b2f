"""The data pages in a real browser against the whole stack (tests/web/conftest.py): a test event sent by
the JavaScript SDK in the page arrives in live events and in the usage chart; the explorer filters, pages
and exports; flags are created, switched on, rolled out and given rules; an experiment is started, its
results are drawn, and it is stopped. Each page passes axe-core and leaves a screenshot."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from eventplane import apikeys
from tests.api.event_support import Ev, load
from tests.web.conftest import PASSWORD, Stack, axe_check, expect_text, no_problems, open_app, screenshot, step
from tests.web.data_steps import see_it_in_usage, see_it_live, send_test_event

MARKUP = '<b>bold</b><img src="x">'
# An RFC 3339 time as a datetime-local input's value (the browser's local time, to the second).
# A datetime-local input's value in the browser's normalised form, which leaves out zero seconds (HTML's
# "valid normalized local date and time string"; the test failed once, at a whole minute).
LOCAL_INPUT = """(iso) => {
  const d = new Date(iso), p = (n) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${day}T${p(d.getHours())}:${p(d.getMinutes())}` + (d.getSeconds() ? `:${p(d.getSeconds())}` : "");
}"""


@dataclass
class Person:
    email: str
    headers: dict[str, str]
    workspace_id: str


async def person_with_workspace(stack: Stack) -> Person:
    """A user and a workspace of theirs, made through the api (what the shell's own tests do in the page)."""
    email = f"data-{uuid.uuid4().hex[:12]}@example.test"
    slug = f"data-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=stack.url + "/api/v1", timeout=10) as client:
        r = await client.post("/auth/signup", json={"email": email, "password": PASSWORD, "name": "Grace Hopper"})
        assert r.status_code == 201, r.text
        r = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        headers = {"authorization": f"Bearer {r.json()['access_token']}"}
        r = await client.post("/workspaces", json={"name": "Data Inc", "slug": slug}, headers=headers)
        assert r.status_code == 201, r.text
        return Person(email, headers, r.json()["id"])


async def api_call(stack: Stack, person: Person, method: str, path: str, body: object = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.url + "/api/v1", timeout=10) as client:
        return await client.request(method, path, json=body, headers=person.headers)


async def log_in_at(page: Page, person: Person, path: str) -> None:
    await open_app(page, f"/login?next={path}")
    await page.get_by_label("Email").fill(person.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await expect(page).to_have_url(re.compile(re.escape(path.split("?")[0])))


async def live_streams(redis: Redis, stack: Stack, workspace_id: str) -> int:
    """Live streams open on the workspace's channel (the stack's own Redis prefix)."""
    keys = apikeys.redis_keys(stack.settings)
    [(_, n)] = await redis.pubsub_numsub(keys.live_events(workspace_id))
    return int(n)


async def until_streams(redis: Redis, stack: Stack, workspace_id: str, wanted: int) -> None:
    async def poll() -> None:
        while True:
            if await live_streams(redis, stack, workspace_id) == wanted:
                return
            await asyncio.sleep(0.05)

    await step(f"{wanted} live streams open", poll())


async def test_a_test_event_from_the_page_arrives_live_and_in_usage(page: Page, stack: Stack, redis: Redis) -> None:
    person = await person_with_workspace(stack)
    r = await api_call(stack, person, "POST", f"/workspaces/{person.workspace_id}/api-keys",
                       {"name": "browser", "scopes": ["track:write"]})  # fmt: skip
    key = r.json()["key"]
    ws = person.workspace_id

    await log_in_at(page, person, f"/w/{ws}/live")
    await page.get_by_label("API key (scope track:write)").fill(key)
    message_id = await send_test_event(page, "signup_clicked")
    await see_it_live(page, message_id, "signup_clicked")
    stored = await stack.pool.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1 AND message_id = $2", uuid.UUID(ws), message_id
    )
    assert stored == 1
    await axe_check(page, "live events")
    await screenshot(page, "live-events")

    assert await live_streams(redis, stack, ws) == 1
    await stack.pool.execute(  # what a worker folds from SDKs' drop reports
        "INSERT INTO client_drops_daily (workspace_id, day, reason, dropped) VALUES ($1, $2, 'queue_full', 7)",
        uuid.UUID(ws),
        dt.datetime.now(dt.UTC).date(),
    )
    await see_it_in_usage(page, "signup_clicked")
    await until_streams(redis, stack, ws, 0)  # leaving the page closed its stream
    await expect(page.locator("p.total")).to_have_attribute("data-total", "1")
    await expect(page.locator("svg.chart desc").first).to_contain_text("1 event from")
    await page.get_by_text("The same data as a table").click()
    table = page.locator("#usage-table")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    await expect(table.locator("tbody tr").first).to_contain_text(today)
    await expect(page.locator('[data-limit="max_api_keys"]')).to_contain_text("1 of 3")
    await expect(page.locator("#dropped-table tbody tr")).to_have_text(re.compile(r"queue_full\s*7"))
    await axe_check(page, "usage")
    await screenshot(page, "usage")
    await expect(table.locator("tbody tr")).to_have_count(30)  # every day of the default range, zeros too
    await page.get_by_label("Range").select_option("7")
    await expect(table.locator("tbody tr")).to_have_count(7)
    await page.reload()  # the range is in the URL
    await expect(page.get_by_label("Range")).to_have_value("7")
    await expect(page.locator("p.total")).to_have_attribute("data-total", "1")
    no_problems(page)


async def test_a_bad_key_shows_the_edge_error(page: Page, stack: Stack) -> None:
    person = await person_with_workspace(stack)
    await log_in_at(page, person, f"/w/{person.workspace_id}/send-event")
    await page.get_by_label("API key (scope track:write)").fill("ep_live_" + "a" * 38)
    await page.get_by_role("button", name="Send test event").click()
    await expect(page.locator(".send-result")).to_contain_text("AUTH_ERROR")
    await axe_check(page, "send a test event")
    await screenshot(page, "send-event")
    no_problems(page, allow=(r"401",))


async def test_explorer_filters_pages_and_exports(page: Page, stack: Stack, tmp_path: Path) -> None:
    person = await person_with_workspace(stack)
    ws = person.workspace_id
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    events = [Ev(f"pro-{i:02d}", "purchase", now - dt.timedelta(minutes=i), user_id=f"u{i}",
                 properties={"plan": "pro", "note": MARKUP}, value=i) for i in range(55)]  # fmt: skip
    events += [Ev("free-1", "purchase", now, user_id="u-free", properties={"plan": "free"}),
               Ev("view-1", "page_view", now, anonymous_id="a-1", properties={"plan": "pro"})]  # fmt: skip
    await load(stack.pool, [e.record(ws) for e in events], [now.date(), (now - dt.timedelta(hours=1)).date()])

    await log_in_at(page, person, f"/w/{ws}/events")
    await expect(page.get_by_role("heading", name="Explorer")).to_be_visible()
    await expect(page.locator("table.events tbody tr")).to_have_count(50)  # one page of all 57, newest first
    await page.get_by_label("Event type").fill("purchase")
    await page.get_by_label("Properties equal").fill("plan:pro")
    await page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("table.events tbody tr")
    await expect(rows.first).to_have_attribute("data-message-id", "pro-00")
    await expect(rows).to_have_count(50)
    await page.get_by_role("button", name="Older (next page)").click()
    await expect(rows).to_have_count(5)
    await expect(rows.last).to_have_attribute("data-message-id", "pro-54")
    await expect(page.get_by_role("button", name="Older (next page)")).to_be_disabled()
    await page.get_by_role("button", name="Newer").click()
    await expect(rows.first).to_have_attribute("data-message-id", "pro-00")
    await rows.first.get_by_role("button").click()
    await expect(page.locator(".json-view code")).to_contain_text('"plan": "pro"')
    await expect(page.locator(".json-view code")).to_contain_text(MARKUP.replace('"', '\\"'))  # as text
    assert await page.locator(".json-view img, .json-view b").count() == 0  # never as markup

    # A time range: from 9.5 minutes ago (typed in the browser's local time, sent as UTC) keeps pro-00..pro-09.
    since = (now - dt.timedelta(minutes=9, seconds=30)).isoformat()
    local = await page.evaluate(LOCAL_INPUT, since)
    await page.get_by_label("From (your local time)").fill(local)
    await page.get_by_role("button", name="Apply filters").click()
    await expect(rows).to_have_count(10)
    await expect(rows.last).to_have_attribute("data-message-id", "pro-09")
    await expect(page.get_by_role("button", name="Older (next page)")).to_be_disabled()
    # The filters are in the URL: a reload shows the same view.
    await expect(page).to_have_url(re.compile(r"event_type=purchase.*property=plan%3Apro"))
    await page.reload()
    await expect(page.get_by_label("From (your local time)")).to_have_value(local)
    await expect(page.get_by_label("Properties equal")).to_have_value("plan:pro")
    await expect(rows).to_have_count(10)
    await rows.nth(2).get_by_role("button").click()
    await expect(page.locator(".json-view code")).to_contain_text('"message_id": "pro-02"')
    await axe_check(page, "explorer")
    await screenshot(page, "explorer")

    async with page.expect_download() as info:
        await page.get_by_role("button", name="Export NDJSON").click()
    download = await step("the NDJSON download", info.value)
    target = tmp_path / "events.ndjson"
    await download.save_as(target)
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    assert [x["message_id"] for x in lines] == [f"pro-{i:02d}" for i in range(10)]  # the filters shown

    async with page.expect_download() as info:
        await page.get_by_role("button", name="Export CSV").click()
    download = await step("the CSV download", info.value)
    assert download.suggested_filename.endswith(".csv")
    csv_path = tmp_path / "events.csv"
    await download.save_as(csv_path)
    csv_text = csv_path.read_text()
    assert csv_text.startswith("message_id,event_type") and "pro-09" in csv_text
    assert "pro-10" not in csv_text and "free-1" not in csv_text
    no_problems(page)


async def test_flags_create_switch_on_roll_out_and_target(page: Page, stack: Stack) -> None:
    person = await person_with_workspace(stack)
    ws = person.workspace_id
    await log_in_at(page, person, f"/w/{ws}/flags")
    await expect_text(page, "No flags yet.")
    await axe_check(page, "flags (empty)")
    await page.get_by_label("Key").fill("new-checkout")
    await page.get_by_label("Name (optional)").fill("New checkout")
    await page.get_by_role("button", name="Create flag").click()
    await expect(page.get_by_role("heading", name="Flag new-checkout")).to_be_visible()
    await expect(page.locator(".flag-state")).to_contain_text("off")

    await page.get_by_role("button", name="Enable").click()
    await expect(page.locator(".flag-state")).to_contain_text("on, served to 100%")
    slider = page.get_by_label("Rollout (share of units that get the flag)")
    await slider.fill("35")
    await expect(page.locator(".rollout .rollout-value")).to_have_text("35%")
    await page.get_by_role("button", name="Save rollout").click()
    await expect(page.locator(".flag-state")).to_contain_text("served to 35%")

    await page.get_by_role("button", name="Add rule").click()
    await page.get_by_role("button", name="Add condition").click()
    await page.get_by_label("Attribute").fill("plan")
    await page.get_by_label("Operator").select_option("in")
    await page.get_by_label("Value", exact=True).fill("pro, enterprise")
    await page.get_by_role("button", name="Save details and rules").click()
    await expect_text(page, "Flag saved")
    await expect(page.get_by_label("Value", exact=True)).to_have_value("pro, enterprise")

    r = await api_call(stack, person, "GET", f"/workspaces/{ws}/feature-flags/new-checkout")
    flag = r.json()
    assert (flag["enabled"], flag["rollout"]) == (True, 35)
    assert [(c["attribute"], c["operator"], c["value"]) for c in flag["rules"][0]["conditions"]] == [
        ("plan", "in", ["pro", "enterprise"])
    ]
    audit = page.locator("ol.audit li")
    await expect(audit).to_have_count(4)  # create, enable, rollout, rules: newest first
    await expect(audit.first).to_contain_text("changed: rules")
    await expect(audit.last).to_contain_text("create")
    await axe_check(page, "flag")
    await screenshot(page, "flag")

    await page.get_by_role("link", name="← All flags").click()
    await expect(page.locator('table.flags tr[data-key="new-checkout"]')).to_contain_text("35%")
    await axe_check(page, "flags")
    await screenshot(page, "flags")
    no_problems(page)


async def test_experiment_start_results_drawn_and_stop(page: Page, stack: Stack) -> None:
    person = await person_with_workspace(stack)
    ws = person.workspace_id
    await log_in_at(page, person, f"/w/{ws}/experiments")
    await page.get_by_label("Key", exact=True).fill("checkout-test")
    await page.get_by_label("Conversion event type").fill("purchase")
    await page.get_by_role("button", name="Create experiment").click()
    await expect(page.get_by_role("heading", name="Experiment checkout-test")).to_be_visible()
    await expect(page.locator(".experiment-status")).to_contain_text("draft")
    await expect(page.locator(".experiment-body")).not_to_contain_text("null")

    await page.get_by_role("button", name="Start experiment").click()
    await page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    await expect(page.locator(".experiment-status")).to_contain_text("running")
    await expect(page.locator("svg.intervals").first).to_contain_text("no data yet")  # nobody exposed yet

    # 40 units per variant: control converts 10, treatment 20 (conversions after each exposure).
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    events = []
    for variant, converted in (("control", 10), ("treatment", 20)):
        for i in range(40):
            unit = f"{variant}-{i}"
            props = {"experiment": "checkout-test", "variant": variant, "bucket_version": 1}
            events.append(Ev(f"x-{unit}", "$exposure", now, user_id=unit, properties=props))
            if i < converted:
                events.append(Ev(f"c-{unit}", "purchase", now + dt.timedelta(seconds=1), user_id=unit))
    await load(stack.pool, [e.record(ws, now + dt.timedelta(seconds=5)) for e in events], [now.date()])

    await page.get_by_role("button", name="Refresh results").click()
    table = page.locator("#results-table")
    await expect(table.locator("tbody tr").nth(0)).to_contain_text("25.0%")
    await expect(table.locator("tbody tr").nth(1)).to_contain_text("50.0%")
    await expect(table.locator("tbody tr").nth(1)).to_contain_text("+25.0%")
    rates, differences = page.locator("svg.intervals").nth(0), page.locator("svg.intervals").nth(1)
    await expect(rates.locator("g.interval")).to_have_count(2)
    await expect(rates.locator("g.interval line.whisker")).to_have_count(2)
    await expect(differences.locator('g.interval[data-label="treatment \u2212 control"] line.whisker')).to_have_count(1)
    await expect(differences.locator("line.zero")).to_have_count(1)
    await expect(rates.locator("desc")).to_contain_text("treatment: 50.0%")
    await axe_check(page, "experiment")
    await screenshot(page, "experiment")

    await page.get_by_role("button", name="Stop experiment").click()
    await page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    await expect(page.locator(".experiment-status")).to_contain_text("stopped")
    audit = page.locator("ol.audit li")
    await expect(audit.first).to_contain_text("status running → stopped")
    await expect(audit).to_have_count(3)

    await page.get_by_role("link", name="← All experiments").click()
    await expect(page.locator('table.experiments tr[data-key="checkout-test"]')).to_contain_text("stopped")
    await axe_check(page, "experiments")
    await screenshot(page, "experiments")
    no_problems(page)


async def test_live_events_filtered_and_bounded(page: Page, stack: Stack, redis: Redis) -> None:
    person = await person_with_workspace(stack)
    ws = person.workspace_id
    r = await api_call(stack, person, "POST", f"/workspaces/{ws}/api-keys", {"name": "b", "scopes": ["track:write"]})
    key = r.json()["key"]
    await log_in_at(page, person, f"/w/{ws}/live")
    await page.locator("form.filters").get_by_label("Event type").fill("keep")
    await page.get_by_role("button", name="Watch with these filters").click()
    await expect(page.locator(".stream-status")).to_contain_text("filtered by event_type=keep")
    await until_streams(redis, stack, ws, 1)  # the unfiltered stream was closed for the filtered one

    batch = [{"event_type": "keep", "user_id": f"u{i}", "message_id": f"keep-{i}"} for i in range(205)]
    batch += [{"event_type": "skip", "user_id": "u", "message_id": f"skip-{i}"} for i in range(3)]
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as edge:
        answer = await edge.post("/api/v1/tracking/batch", json={"events": batch}, headers={"x-api-key": key})
    assert answer.status_code == 202, answer.text
    rows = page.locator(".live-list li")
    await expect(page.locator(".live-list button[data-message-id=keep-204]")).to_be_visible()
    await expect(rows).to_have_count(200)  # at most 200 kept in the page
    await expect(page.locator(".live-list")).not_to_contain_text("skip")
    await expect(page.get_by_text(re.compile(r"Showing 200 \(at most 200"))).to_be_visible()
    no_problems(page)
