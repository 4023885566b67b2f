"""The dashboard in a real browser: the whole stack on real sockets in the session's event loop (the api
app serving the dashboard, the edge, a worker storing what the edge queues; on a database, Redis prefix
and mailbox of their own), Debian's chromium driven by Playwright (one browser for the tests/web package,
a new context per test), axe-core run in each page, screenshots.

Fixtures: `stack` (its URLs, settings and pool), `browser`, `page` (a fresh context on the dashboard),
`new_page` (more contexts: a second person). Helpers: `axe_check`, `screenshot`, `sign_up`, `log_in`,
`mailed_link`, `expect_text`, `step`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import expect as pw_expect

from api.app import create_app
from eventplane import mail
from eventplane.settings import Secret, Settings
from tests.api.mailbox import own_outbox
from tests.conftest import KEEP_ALIVE, running_edge
from tests.node_cache import npm_package
from workers.main import build_worker

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = "axe-core@4.10.2"
SCREENSHOTS = ROOT / ".venv" / "screenshots"
PASSWORD = "correct horse battery staple"
DEADLINE = 20.0  # seconds for any one browser or server step
T = TypeVar("T")


async def step(what: str, awaitable: Awaitable[T], deadline: float = DEADLINE) -> T:
    """Every step has a deadline: a wedged one fails plainly, naming itself."""
    try:
        async with asyncio.timeout(deadline):
            return await awaitable
    except TimeoutError:
        raise AssertionError(f"{what} did not finish within {deadline:g} s") from None


@dataclass
class Stack:
    url: str  # the dashboard and api, e.g. http://127.0.0.1:PORT
    edge_url: str
    settings: Settings
    pool: asyncpg.Pool


def _socket() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    return sock, port


@contextlib.asynccontextmanager
async def _serve(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(
            app, lifespan="on", log_level="warning", timeout_graceful_shutdown=2, timeout_keep_alive=KEEP_ALIVE
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(DEADLINE):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await step("stopping the api server", task)
        sock.close()


@contextlib.asynccontextmanager
async def _worker(settings: Settings) -> AsyncIterator[None]:
    """A worker storing what the edge queues, as `make run` runs one (its cron jobs off: mail is delivered
    by `mailed_link`, when a test wants it)."""
    worker = build_worker(settings, handle_signals=False, cron_jobs=[], poll_delay=0.02)
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await step("stopping the worker", task)
        await worker.close()


@pytest_asyncio.fixture(scope="package")
async def stack(server_urls: tuple[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Stack]:  # fmt: skip
    """The stack on a database, Redis prefix and data dir of its own: its worker drains no other test's
    queue, and its mailbox and outbox hold only these tests' mail (a suite's sign-ups leave hundreds)."""
    # Cheap argon2, and no per-address limits: every browser of the suite comes from 127.0.0.1.
    base = replace(settings, jwt_secret=Secret(secrets.token_urlsafe(48)), password_time_cost=1,
                   password_memory_kib=8 * 1024, signup_limit_per_ip=100_000, login_limit_per_ip=100_000,
                   login_limit_per_email=100_000, redis_prefix=f"{settings.redis_prefix}web{uuid.uuid4().hex[:6]}:",
                   data_dir=tmp_path_factory.mktemp("web"))  # fmt: skip
    async with own_outbox(server_urls[0], base) as (own, pool), running_edge(own) as edge:
        edge_url = str(edge.base_url).rstrip("/")
        sock, port = _socket()
        url = f"http://127.0.0.1:{port}"
        s = replace(own, public_url=url, edge_public_url=edge_url)
        async with _serve(create_app(s), sock), _worker(s):
            yield Stack(url, edge_url, s, pool)


def chromium_or_fail() -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need chromium (`make browser`, or apt-get install chromium)"
        )


@pytest_asyncio.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    chromium_or_fail()
    pw = await step("starting playwright", async_playwright().start())
    try:
        b = await step("launching chromium", pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, timeout=DEADLINE * 1000,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]))  # fmt: skip
        try:
            yield b
        finally:
            await step("closing chromium", b.close())
    finally:
        await step("stopping playwright", pw.stop())


NewPage = Callable[[], Awaitable[Page]]


@pytest_asyncio.fixture
async def new_page(browser: Browser, stack: Stack) -> AsyncIterator[NewPage]:
    """Open pages in contexts of their own (separate cookies: separate people); all closed afterwards.
    Each page collects its console errors and CSP violations in `page.problems` (see `no_problems`)."""
    contexts = []

    async def make() -> Page:
        context = await step("opening a browser context", browser.new_context(
            base_url=stack.url, viewport={"width": 1280, "height": 800}, permissions=["clipboard-read",
            "clipboard-write"]))  # fmt: skip
        context.set_default_timeout(DEADLINE * 1000)
        contexts.append(context)
        page = await context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.problems = problems  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        await step("closing a browser context", context.close())


@pytest_asyncio.fixture
async def page(new_page: NewPage) -> Page:
    return await new_page()


def problems_of(page: Page) -> list[str]:
    found: list[str] = page.problems  # type: ignore[attr-defined]
    return found


# The browser logs every 4xx answer as an error; the app shows those itself (the first page's refresh
# without a session cookie is a 401). Script errors and CSP violations are what must not happen.
ANSWERED_4XX = r"Failed to load resource: the server responded with a status of 4\d\d"


def no_problems(page: Page, allow: tuple[str, ...] = (ANSWERED_4XX,)) -> None:
    """The page logged no script error and broke no CSP rule (a violation is a console error), except
    messages matching one of `allow`."""
    bad = [p for p in problems_of(page) if not any(re.search(a, p) for a in allow)]
    assert not bad, "the page reported problems:\n" + "\n".join(bad)


async def expect_text(page: Page, text: str | re.Pattern[str], selector: str = "body") -> None:
    """Wait (deadline) until `text` is visible within `selector`."""
    await pw_expect(page.locator(selector).get_by_text(text).first).to_be_visible(timeout=DEADLINE * 1000)


async def open_app(page: Page, path: str = "/") -> None:
    """Go to `path` and wait until the app has rendered its first page."""
    await step(f"loading {path}", page.goto(path))
    # A locator, not wait_for_function: that evaluates strings with eval(), which the page's CSP forbids.
    await pw_expect(page.locator("html[data-ready=true]")).to_be_attached(timeout=DEADLINE * 1000)


async def sign_up(page: Page, email: str | None = None, name: str = "Ada Lovelace") -> str:
    """Sign up through the page (and so log in); returns the email. Ends on the Workspaces page."""
    email = email or f"web-{uuid.uuid4().hex[:12]}@example.test"
    await open_app(page, "/signup")
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await pw_expect(page.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
    return email


async def log_in(page: Page, email: str, path: str = "/login", password: str = PASSWORD) -> None:
    """Log in through the login page (`path` may carry ?next=)."""
    await open_app(page, path)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await pw_expect(page.get_by_role("button", name="Log out")).to_be_visible()


async def mailed_link(stack: Stack, address: str, path: str) -> str:
    """The link to `path` (e.g. "invitations/accept") in the latest mail to `address`, as its path and
    query on the dashboard: delivers the outbox to the file mailbox until one is there (deadline)."""
    pattern = re.compile(rf"{re.escape(stack.url)}(/{re.escape(path)}\?token=\S+)")

    async def find() -> str:
        while True:
            await mail.deliver_due(stack.pool, stack.settings)
            for p in mail.latest(stack.settings, 200):
                text = p.read_text("utf-8", errors="replace")
                if address.lower() in text.lower() and (m := pattern.search(_plain(text))):
                    return m.group(1)
            await asyncio.sleep(0.05)

    return await step(f"mail to {address} with a {path} link", find())


def _plain(raw: str) -> str:
    import email as email_lib
    import email.policy

    message = email_lib.message_from_string(raw, policy=email.policy.default)
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else raw


async def _axe_source() -> str:
    """axe-core's browser build, installed once with npm into .venv/node-cache."""
    target = await npm_package(AXE, "axe-core/axe.min.js", "axe_check cannot run without axe-core")
    return target.read_text("utf-8")


_AXE_SOURCE: list[str] = []


async def axe_check(page: Page, name: str = "") -> None:
    """Run axe-core in the page; fail on any serious or critical violation, listing each with its nodes.
    The script goes in through the devtools protocol (page.evaluate), which the page's CSP does not govern."""
    if not _AXE_SOURCE:
        _AXE_SOURCE.append(await _axe_source())
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(_AXE_SOURCE[0] + "\n;undefined")
    found, seen = problems_of(page), len(problems_of(page))
    result = await step("axe-core", page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })"))
    # axe-core sets inline styles on some elements to measure them; the page's CSP refuses and reports each:
    # those reports are axe's, not the page's.
    found[seen:] = [p for p in found[seen:] if "Applying inline style violates" not in p]
    bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
    listed = [
        f"- {v['impact']} {v['id']}: {v['help']} ({v['helpUrl']})\n"
        + "\n".join(f"    {json.dumps(n['target'])}: {n.get('failureSummary', '')}" for n in v["nodes"][:5])
        for v in bad
    ]
    where = name or page.url
    assert not bad, f"axe-core found {len(bad)} serious/critical violations on {where}:\n" + "\n".join(listed)


async def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of the whole page as .venv/screenshots/<name>.png (outside git); returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await step(f"screenshot {name}", page.screenshot(path=str(path), full_page=True))
    return path
