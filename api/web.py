"""The dashboard, served by the api process itself: `index.html` for the app's paths (the browser's
router takes it from there: history API, no hash) and the static files of `api/web/static/`, plus the JS
SDK's browser module (`sdk/js`) under `/static/sdk/`.

No build step: the files are plain ES modules, read once when the app is made. index.html loads them
under `/static/v<digest>/`, a prefix naming this set of files, so they are cached for a year
(immutable); modules import each other relatively and so stay under that prefix. The same files
without the prefix are answered with `no-cache` and an ETag (a 304 when unchanged). The page's strict
Content-Security-Policy is set by `api/security.py` on every HTML answer.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventplane.settings import Settings

WEB_DIR = Path(__file__).resolve().parent / "web"
# sdk/js sits beside api/ in the source tree (the editable install `make setup` makes).
SDK_DIR = Path(__file__).resolve().parents[1] / "sdk" / "js"
# The app's paths (index.html for each; the browser router picks the page). The mailed links point at
# /verify-email, /reset-password, /confirm-email and /invitations/accept (eventplane/mail_templates.py).
APP_PATHS = ("/", "/login", "/signup", "/forgot-password", "/reset-password", "/verify-email", "/confirm-email",
             "/invitations/accept", "/account", "/workspaces", "/w/{rest:path}")  # fmt: skip
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png",
         ".svg": "image/svg+xml", ".json": "application/json", ".ico": "image/x-icon"}  # fmt: skip


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _asset(body: bytes, name: str) -> Asset:
    media_type = TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def load_assets(web_dir: Path = WEB_DIR, sdk_dir: Path = SDK_DIR) -> dict[str, Asset]:
    """Every static file by its path under /static/: api/web/static/**, and sdk/js's index.js + src/*.js
    as sdk/... (only the module files: no tests, no package.json)."""
    assets = {
        str(p.relative_to(web_dir / "static")): _asset(p.read_bytes(), p.name)
        for p in sorted((web_dir / "static").rglob("*"))
        if p.is_file()
    }
    sdk_files = [sdk_dir / "index.js", *sorted((sdk_dir / "src").glob("*.js"))] if sdk_dir.is_dir() else []
    for p in sdk_files:
        assets[f"sdk/{p.relative_to(sdk_dir)}"] = _asset(p.read_bytes(), p.name)
    return assets


def digest(assets: dict[str, Asset]) -> str:
    h = hashlib.sha256()
    for name in sorted(assets):
        h.update(f"{name}\0{assets[name].etag}\0".encode())
    return h.hexdigest()[:16]


class Dashboard:
    """The routes of the dashboard, with the files they serve."""

    def __init__(self, settings: Settings, web_dir: Path = WEB_DIR, sdk_dir: Path = SDK_DIR) -> None:
        self.assets = load_assets(web_dir, sdk_dir)
        self.version = "v" + digest(self.assets)
        page = (web_dir / "index.html").read_text("utf-8")
        page = page.replace("{{static}}", f"/static/{self.version}")
        page = page.replace("{{edge_url}}", html.escape(settings.edge_public_url.rstrip("/"), quote=True))
        self.index = _asset(page.encode(), "index.html")

    def routes(self) -> list[Route]:
        table = [Route(path, self.page, methods=["GET"]) for path in APP_PATHS]
        table.append(Route("/static/{path:path}", self.static, methods=["GET"]))
        return table

    async def page(self, request: Request) -> Response:
        # Never a 304: a 304's headers replace the cached ones, and security.py gives HTML (only) the
        # page's CSP. The page is small and names the versioned files, which are what gets cached.
        return Response(self.index.body, media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"})

    async def static(self, request: Request) -> Response:
        path: str = request.path_params["path"]
        first, _, rest = path.partition("/")
        cache = REVALIDATE
        if rest and first.startswith("v") and len(first) == 17:
            # A versioned URL: immutable only when it names the files served now (a page loaded before
            # a restart with new files gets them, revalidated, rather than a 404).
            path, cache = rest, (IMMUTABLE if first == self.version else REVALIDATE)
        asset = self.assets.get(path)
        if asset is None:
            return Response(b'{"error":{"code":"NOT_FOUND","message":"No such file","details":null}}', 404,
                            media_type="application/json")  # fmt: skip
        return _answer(request, asset, cache, asset.media_type)


def _answer(request: Request, asset: Asset, cache: str, media_type: str) -> Response:
    headers = {"etag": asset.etag, "cache-control": cache}
    if asset.etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=media_type, headers=headers)
