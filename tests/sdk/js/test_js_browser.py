"""The JavaScript SDK in a real browser (the system chromium, headless, driven by Playwright): unsent
events survive a reload in localStorage, and a page that goes away sends its queue with a keepalive
request. The page is served from the same origin as a proxy to the real edge (the edge answers no CORS
preflight), and Postgres must hold each event once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import uvicorn
from playwright.async_api import Page, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from eventplane.settings import Settings
from tests.conftest import drain, make_tenant, running_edge

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
PAGE = """<!doctype html><meta charset="utf-8"><title>sdk</title>
<script type="module">
import { ExperimentationClient } from '/sdk/index.js';
window.ExperimentationClient = ExperimentationClient;
window.sdkReady = true;
</script>"""
DEADLINE = 20.0
T = TypeVar("T")


async def step(what: str, awaitable: Awaitable[T]) -> T:
    """Every browser and server step has a deadline: a wedged one fails plainly, naming itself."""
    try:
        async with asyncio.timeout(DEADLINE):
            return await awaitable
    except TimeoutError:
        raise AssertionError(f"{what} did not finish within {DEADLINE:g} s") from None


class Site:
    """The page, the SDK's files, and /api/v1/tracking/batch forwarded to the edge unless `down`."""

    def __init__(self, edge: httpx.AsyncClient) -> None:
        self.edge = edge
        self.down = False
        self.seen: list[int] = []  # the status answered to each tracking request
        self.accepted = asyncio.Event()  # set at the first 202
        self.app = Starlette(
            routes=[
                Route("/page.html", lambda _: HTMLResponse(PAGE)),
                Route("/api/v1/tracking/batch", self.batch, methods=["POST"]),
                Mount("/sdk", StaticFiles(directory=ROOT / "sdk" / "js")),
            ]
        )

    async def batch(self, request: Request) -> Response:
        if self.down:
            self.seen.append(503)
            return Response(b'{"error":{"code":"DOWN","message":"down","details":null}}', 503)
        wanted = ("x-api-key", "content-type", "content-encoding")
        headers = {k: v for k, v in request.headers.items() if k in wanted}
        answer = await self.edge.post("/api/v1/tracking/batch", content=await request.body(), headers=headers)
        self.seen.append(answer.status_code)
        if answer.status_code == 202:
            self.accepted.set()
        return Response(answer.content, answer.status_code, media_type="application/json")


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(DEADLINE):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await step("stopping the page server", task)
    sock.close()


def chromium_or_fail() -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: the browser test needs chromium (apt-get install -y chromium)"


@contextlib.asynccontextmanager
async def browser_page() -> AsyncIterator[Page]:
    chromium_or_fail()
    pw = await step("starting playwright", async_playwright().start())
    try:
        browser = await step(
            "launching chromium",
            pw.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                timeout=DEADLINE * 1000,
            ),
        )
        try:
            yield await step("opening a page", browser.new_page())
        finally:
            await step("closing chromium", browser.close())
    finally:
        await step("stopping playwright", pw.stop())


async def open_page(page: Page, origin: str) -> None:
    await step("loading the page", page.goto(f"{origin}/page.html", timeout=DEADLINE * 1000))
    await page.wait_for_function("window.sdkReady === true", timeout=DEADLINE * 1000)


async def stored(pool: asyncpg.Pool, workspace_id: str) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT message_id, count(*) AS n FROM events WHERE workspace_id = $1 GROUP BY message_id", workspace_id
    )
    return {row["message_id"]: row["n"] for row in rows}


TRACK = """([key, ids, extra]) => {
  window.client = new window.ExperimentationClient({ apiKey: key, baseUrl: location.origin, ...extra });
  for (const messageId of ids) window.client.track('browser', { anonymousId: 'tab-1', messageId });
}"""


async def test_unsent_events_survive_a_reload_in_local_storage(fresh: Settings, pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool)
    ids = [f"reload-{uuid.uuid4()}" for _ in range(3)]
    async with running_edge(fresh) as edge, browser_page() as page:
        site = Site(edge)
        async with serve(site.app) as origin:
            site.down = True  # nothing gets through on the first page, nor from its page-hide send
            await open_page(page, origin)
            extra = {"flushIntervalMs": 20, "backoffBaseMs": 60_000}
            await step("tracking", page.evaluate(TRACK, [tenant.key, ids, extra]))
            await page.wait_for_function(
                """(ids) => Object.keys(localStorage).some((k) => k.startsWith('experimentation-sdk:')
                     && ids.every((id) => localStorage.getItem(k).includes(id)))""",
                arg=ids,
                timeout=DEADLINE * 1000,
            )
            await step("reloading", page.reload(timeout=DEADLINE * 1000))
            assert site.seen and set(site.seen) == {503}
            site.down = False
            await page.wait_for_function("window.sdkReady === true", timeout=DEADLINE * 1000)
            delivered = await step(
                "flushing what storage kept",
                page.evaluate(
                    """async (key) => {
                     const c = new window.ExperimentationClient({ apiKey: key, baseUrl: location.origin });
                     return [await c.flush(5000), c.stats().sent,
                             Object.keys(localStorage).filter((k) => k.startsWith('experimentation-sdk:')).length];
                   }""",
                    tenant.key,
                ),
            )
            assert delivered == [True, 3, 0]  # sent from storage, and the stored copy removed after the 2xx
    await step("the worker storing the events", drain(fresh))
    assert await stored(pool, tenant.workspace_id) == dict.fromkeys(ids, 1)


async def test_a_page_that_goes_away_sends_its_queue_with_keepalive(fresh: Settings, pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool)
    ids = [f"hide-{uuid.uuid4()}" for _ in range(4)]
    async with running_edge(fresh) as edge, browser_page() as page:
        site = Site(edge)
        async with serve(site.app) as origin:
            await open_page(page, origin)
            await step("tracking", page.evaluate(TRACK, [tenant.key, ids, {"flushIntervalMs": 600_000}]))
            assert site.seen == []  # nothing is due yet: only leaving the page sends it
            await step("leaving the page", page.goto("about:blank", timeout=DEADLINE * 1000))  # pagehide
            await asyncio.wait_for(site.accepted.wait(), DEADLINE)
    await step("the worker storing the events", drain(fresh))
    assert await stored(pool, tenant.workspace_id) == dict.fromkeys(ids, 1)


async def test_local_storage_holds_at_most_max_persisted_events(fresh: Settings, pool: asyncpg.Pool) -> None:
    tenant = await make_tenant(pool)
    ids = [f"bound-{i}-{uuid.uuid4()}" for i in range(5)]
    async with running_edge(fresh) as edge, browser_page() as page:
        site = Site(edge)
        async with serve(site.app) as origin:
            site.down = True
            await open_page(page, origin)
            extra = {"flushIntervalMs": 20, "backoffBaseMs": 60_000, "maxPersistedEvents": 2}
            await step("tracking", page.evaluate(TRACK, [tenant.key, ids, extra]))
            kept = await page.wait_for_function(
                """() => {
                     const k = Object.keys(localStorage).find((k) => k.startsWith('experimentation-sdk:'));
                     return k && JSON.parse(localStorage.getItem(k)).events.map((e) => JSON.parse(e).message_id);
                   }""",
                timeout=DEADLINE * 1000,
            )
            assert await kept.json_value() == ids[:2]  # the oldest, which go first
