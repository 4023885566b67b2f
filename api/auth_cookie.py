"""The dashboard's session cookie: the refresh token in an httpOnly cookie, so page scripts never hold a
long-lived credential (the access token lives in the page's memory only; a reload refreshes through the
cookie).

Opt-in: `POST /auth/login` with `"cookie": true`. The cookie is `SameSite=Strict`, `Path=/api/v1/auth`
(sent only to refresh and logout), `HttpOnly`, and `Secure` when the public URL is https. Routes that a
cookie authenticates (refresh and logout without a body, and a cookie login) are CSRF-checked: the
request must carry `X-EventPlane-CSRF: 1` (a header no cross-site form can send, and that a cross-origin
fetch cannot send without a CORS preflight we never grant) and an `Origin` that is this server's own.
Anything else is 403 `CSRF_REFUSED`. Bearer-token routes need none of this: browsers never add a bearer.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from eventplane.errors import ApiError
from eventplane.settings import Settings

COOKIE = "ep_refresh"
PATH = "/api/v1/auth"
CSRF_HEADER = "x-eventplane-csrf"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_csrf(request: Request, settings: Settings) -> None:
    """Refuse (403 CSRF_REFUSED) a cookie-authenticated request without the header or from another origin."""
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(403, "CSRF_REFUSED", f"This request needs the header {CSRF_HEADER.title()}: 1")
    origin = (request.headers.get("origin") or "").lower()
    own = {_origin(str(request.base_url)), _origin(settings.public_url)}
    if origin not in own:
        raise ApiError(403, "CSRF_REFUSED", "This request must come from the dashboard's own origin",
                       {"origin": origin or None})  # fmt: skip


def refresh_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def set_cookie(response: Response, settings: Settings, token: str) -> Response:
    response.set_cookie(COOKIE, token, max_age=min(settings.refresh_token_ttl, settings.session_max_age),
                        path=PATH, secure=_secure(settings), httponly=True, samesite="strict")  # fmt: skip
    return response


def clear_cookie(response: Response, settings: Settings) -> Response:
    response.delete_cookie(COOKIE, path=PATH, secure=_secure(settings), httponly=True, samesite="strict")
    return response


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://") or settings.behind_https
