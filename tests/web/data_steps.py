"""Steps of the data pages that more than one browser test takes (the issue's flow in
test_dashboard_flow.py, and test_dashboard_data.py): send a test event from the page with the JS SDK,
see it arrive in live events, see it in the usage chart."""

from __future__ import annotations

import uuid

from playwright.async_api import Page, expect


async def send_test_event(page: Page, event_type: str) -> str:
    """On the live events page (its send form), send one event; returns its message id once the edge took it."""
    await expect(page.get_by_role("heading", name="Live events")).to_be_visible()
    await expect(page.locator(".stream-status")).to_contain_text("Connected")
    await page.locator("form.send-event").get_by_label("Event type").fill(event_type)
    await page.get_by_role("button", name="Send test event").click()
    accepted = page.locator(".send-result .message-id")
    await expect(accepted).to_be_visible()
    message_id = (await accepted.text_content() or "").strip()
    assert uuid.UUID(message_id)
    return message_id


async def see_it_live(page: Page, message_id: str, event_type: str) -> None:
    """The event reaches the live list (SDK -> edge -> queue -> worker -> commit -> pub/sub -> SSE) within the
    deadline, and its JSON shows on selection."""
    row = page.locator(f'.live-list button[data-message-id="{message_id}"]')
    await expect(row).to_be_visible()
    await expect(row).to_contain_text(event_type)
    await row.click()
    await expect(page.locator(".json-view code")).to_contain_text(f'"message_id": "{message_id}"')


async def see_it_in_usage(page: Page, event_type: str, count: int = 1) -> None:
    """Through the side nav to Usage: the chart has a column part for `event_type`, and its table the count."""
    await page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Usage").click()
    await expect(page.get_by_role("heading", name="Usage")).to_be_visible()
    chart = page.locator("svg.chart").first
    await expect(chart.locator(f'rect[data-series="{event_type}"]')).to_have_count(1)
    await expect(chart.locator(f'rect[data-series="{event_type}"] title')).to_contain_text(f"{event_type}: {count}")
    table = page.locator("#usage-table")
    await expect(table.locator("thead")).to_contain_text(event_type)
