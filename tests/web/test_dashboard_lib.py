"""lib/api.js in the browser, the contract the data pages build on: apiStream reads the live stream of
stored events with the Authorization header, download saves an export, a 401 is refreshed through the
cookie once and the call retried, and any other non-2xx is an ApiError with the server's code."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
from playwright.async_api import Page, Route, expect

from eventplane import apikeys
from eventplane.redis_client import connect_redis
from tests.web.conftest import Stack, no_problems, sign_up, step

LOAD = """async () => {
  const base = document.querySelector('meta[name=eventplane-static]').content;
  window.lib = await import(base + '/lib/api.js');
}"""


async def workspace_and_key(page: Page) -> tuple[str, str]:
    await page.get_by_label("Name", exact=True).fill("Data")
    await page.get_by_label("Slug").fill(f"data-{uuid.uuid4().hex[:8]}")
    await page.get_by_role("button", name="Create workspace").click()
    await expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    workspace_id = page.url.split("/w/")[1].split("/")[0]
    await page.get_by_label("Key name").fill("sender")
    await page.get_by_role("button", name="Create key").click()
    key = (await page.locator("code.key-secret").inner_text()).strip()
    return workspace_id, key


async def subscribed(stack: Stack, workspace_id: str) -> None:
    """Wait (deadline) until the page's stream has subscribed to the workspace's live channel."""
    channel = apikeys.redis_keys(stack.settings).live_events(workspace_id)
    redis = connect_redis(stack.settings.redis_dsn)
    try:
        deadline = time.monotonic() + 10
        while (await redis.pubsub_numsub(channel))[0][1] < 1:
            assert time.monotonic() < deadline, "the page's live stream never subscribed"
            await asyncio.sleep(0.02)
    finally:
        await redis.aclose()


async def test_api_stream_and_download(page: Page, stack: Stack) -> None:
    await sign_up(page)
    workspace_id, key = await workspace_and_key(page)
    await page.evaluate(LOAD)
    # The stream subscribes; then an event sent to the edge is stored by the worker and read from the stream.
    await page.evaluate("""(ws) => {
      window.abort = new AbortController();
      window.got = [];
      window.streamEnded = false;
      (async () => {
        for await (const message of lib.apiStream(`/workspaces/${ws}/events/live`, { signal: abort.signal })) {
          got.push(message);
        }
        streamEnded = true;
      })();
    }""", workspace_id)  # fmt: skip
    message_id = f"lib-{uuid.uuid4()}"
    await subscribed(stack, workspace_id)
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=10) as edge:
        r = await edge.post("/api/v1/tracking/track", headers={"x-api-key": key},
                            json={"event_type": "lib_test", "user_id": "u1", "message_id": message_id})  # fmt: skip
        assert r.status_code == 202, r.text
    await page.wait_for_function("() => got.length > 0", polling=50)  # the worker stored it; the stream read it
    got = await page.evaluate("() => got")
    assert got[0]["event"] == "event" and got[0]["data"]["message_id"] == message_id, got
    await page.evaluate("() => abort.abort()")
    await page.wait_for_function("() => streamEnded === true", polling=50)

    async with page.expect_download() as info:
        await page.evaluate("(ws) => lib.download(`/workspaces/${ws}/events/export?format=ndjson`, 'events.ndjson')",
                            workspace_id)  # fmt: skip
    download = await info.value
    assert download.suggested_filename == "events.ndjson"
    path = await step("saving the download", download.path())
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {row["message_id"] for row in rows} == {message_id}
    no_problems(page)


async def test_a_401_is_refreshed_once_and_other_errors_are_api_errors(page: Page, stack: Stack) -> None:
    await sign_up(page)
    await page.evaluate(LOAD)
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if r.url.endswith("/api/v1/auth/refresh") else None)
    failed: list[str] = []

    async def expire_once(route: Route) -> None:
        if not failed:  # as if the access token had expired
            failed.append(route.request.url)
            await route.fulfill(status=401, content_type="application/json",
                                body='{"error":{"code":"AUTH_ERROR","message":"expired","details":null}}')  # fmt: skip
        else:
            await route.continue_()

    await page.route("**/api/v1/me", expire_once)
    me = await page.evaluate("() => lib.api('GET', '/me')")
    assert failed and me["email"].endswith("@example.test")
    assert len(refreshes) == 1

    error = await page.evaluate("""async () => {
      try { await lib.api('POST', '/workspaces', { name: 'x', slug: 'NOT A SLUG' }); }
      catch (e) {
        return { status: e.status, code: e.code, message: e.message, isApi: e instanceof lib.ApiError };
      }
    }""")
    assert error["isApi"] and error["status"] == 400 and error["code"] == "VALIDATION_ERROR" and error["message"]
    assert await page.evaluate("() => lib.edgeUrl()") == stack.edge_url
    no_problems(page)
