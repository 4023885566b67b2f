"""Security headers on every response (HTML: the dashboard's strict CSP), and CORS for the dashboard origins.

Both wrap the whole app (see `api.app.Api`), outside Starlette's ServerErrorMiddleware, so that even a
500 carries them. Pure ASGI: nothing buffers a body.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventplane.settings import Settings

# A JSON API renders nothing, runs no script and is never framed: deny everything a browser could do with it.
CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"  # two years, as hstspreload.org asks
HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": CSP,
    "cross-origin-resource-policy": "same-origin",
}


def app_csp(settings: Settings) -> str:
    """The dashboard's policy (every HTML answer): its own files only, no inline script or style, and
    connections to this origin and the edge (the page's "send a test event" goes there)."""
    edge = urlsplit(settings.edge_public_url)
    connect = " ".join(dict.fromkeys(["'self'", f"{edge.scheme}://{edge.netloc}"]))
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; connect-src {connect}; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


# Answers under /api/ are per caller or carry secrets (tokens, plaintext keys): no cache may keep them.
PRIVATE_PREFIX = "/api/"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts: bool, page_csp: str = CSP) -> None:
        self.app = app
        self.headers = HEADERS | ({"strict-transport-security": HSTS} if hsts else {})
        self.page_csp = page_csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["path"].startswith(PRIVATE_PREFIX) or _has_credentials(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
                if headers.get("content-type", "").startswith("text/html"):
                    headers["content-security-policy"] = self.page_csp
                if private:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _has_credentials(scope: Scope) -> bool:
    return any(name in (b"authorization", b"x-api-key") for name, _ in scope["headers"])


def wrap(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The app with CORS (only when origins are configured) inside the security headers."""
    if settings.dashboard_origins:
        # Exact origins, never "*", and no credentials mode: the dashboard sends a bearer token, not cookies.
        app = CORSMiddleware(
            app,
            allow_origins=settings.dashboard_origins,
            allow_methods=("GET", "POST", "PUT", "PATCH", "DELETE"),
            allow_headers=("authorization", "content-type", "x-api-key", "x-admin-token"),
            expose_headers=("retry-after",),
            max_age=600,
        )
    return SecurityHeaders(app, hsts=settings.behind_https, page_csp=app_csp(settings))
