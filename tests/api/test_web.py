"""The dashboard's serving (api/web.py): index.html for the app's paths under the page's strict CSP,
static files with ETags under an immutable versioned prefix, the JS SDK's module files under
/static/sdk/, and every module import of the app resolving to a served file."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from api import web
from api.app import create_app
from api.security import CSP
from eventplane.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' https://edge.example.com:8443; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


@pytest.fixture(scope="module")
def app(api_settings: Settings) -> Starlette:
    return create_app(replace(api_settings, edge_public_url="https://edge.example.com:8443/"))


@pytest.fixture
async def client(app: Starlette) -> httpx.AsyncClient:
    # The dashboard's routes need no lifespan (no pool): a plain ASGI client.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


def static_prefix(page: str) -> str:
    match = re.search(r'src="(/static/v[0-9a-f]{16})/app\.js"', page)
    assert match, page
    return match.group(1)


APP_PATHS = ["/", "/login", "/signup", "/w/123/keys", "/w/x/y/z", "/account", "/invitations/accept?token=abc",
             "/verify-email?token=t", "/reset-password"]  # fmt: skip


@pytest.mark.parametrize("path", APP_PATHS)
async def test_the_app_paths_answer_index_html_under_the_page_csp(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == PAGE_CSP
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache" and "etag" not in r.headers
    assert '<meta name="eventplane-edge-url" content="https://edge.example.com:8443">' in r.text
    assert "<script>" not in r.text and "<style" not in r.text and " style=" not in r.text  # nothing inline


async def test_the_json_api_keeps_its_own_csp(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/no-such-route")
    assert r.status_code == 404 and r.headers["content-security-policy"] == CSP
    assert (await client.get("/no-such-page")).headers["content-security-policy"] == CSP


async def test_versioned_static_files_are_immutable_and_revalidate_by_etag(client: httpx.AsyncClient) -> None:
    prefix = static_prefix((await client.get("/")).text)
    r = await client.get(f"{prefix}/app.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.content == (ROOT / "api/web/static/app.js").read_bytes()
    etag = r.headers["etag"]
    again = await client.get(f"{prefix}/app.js", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (await client.get(f"{prefix}/app.css")).headers["content-type"] == "text/css; charset=utf-8"
    # Without the prefix, or with another version's: served, but revalidated on every use.
    for path in ("/static/app.js", "/static/v0123456789abcdef/app.js"):
        r = await client.get(path)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache" and r.headers["etag"] == etag


async def test_the_js_sdk_is_served_as_browser_modules(client: httpx.AsyncClient) -> None:
    prefix = static_prefix((await client.get("/")).text)
    r = await client.get(f"{prefix}/sdk/index.js")
    assert r.status_code == 200 and r.content == (ROOT / "sdk/js/index.js").read_bytes()
    for imported in re.findall(r"from '\./(src/[\w]+\.js)'", r.text):
        assert (await client.get(f"{prefix}/sdk/{imported}")).status_code == 200, imported
    for path in ("sdk/package.json", "sdk/test/queue.test.mjs", "../web.py", "sdk/../../api/web.py", "nope.js"):
        r = await client.get(f"/static/{path}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", path


def test_every_module_import_of_the_app_is_served() -> None:
    """A module importing a file that does not exist would fail only in a browser: check them all here."""
    assets = web.load_assets()
    imports = re.compile(
        r"""^\s*(?:import|export)\s[^'"]*?from\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']""", re.M
    )
    checked = 0
    for name, asset in assets.items():
        if not name.endswith(".js"):
            continue
        for match in imports.finditer(asset.body.decode()):
            target = match.group(1) or match.group(2)
            assert target.startswith("."), f"{name} imports {target}: the app imports only its own files"
            resolved = (Path("/static") / name).parent.joinpath(target).resolve()
            assert str(resolved.relative_to("/static")) in assets, f"{name} imports {target}, which is not served"
            checked += 1
    assert checked > 20


def test_the_edge_url_setting(api_settings: Settings) -> None:
    assert Settings.from_env({}).edge_public_url == "http://127.0.0.1:8000"
    s = Settings.from_env({"EVENTPLANE_EDGE_PUBLIC_URL": "https://edge.example.com/"})
    assert s.edge_public_url == "https://edge.example.com"
    page = web.Dashboard(replace(api_settings, edge_public_url='https://e.example.com/"><script>x</script>')).index.body
    assert b"<script>x" not in page and b"&quot;&gt;&lt;script&gt;" in page
