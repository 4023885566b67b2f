"""The user's own sessions: list them (created, last used, client), end one, or end all the others."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api import access, ratelimit, sessions
from api.errors import not_found
from api.rest import no_content, path_uuid, reply
from api.routing import Endpoint
from api.state import services
from api.wire import SessionOut

CALLS_PER_MINUTE = 60  # per user, over these routes together: generous for a person, a wall for a script


async def _user(request: Request) -> access.User:
    who = await access.user(request)
    svc = services(request)
    await ratelimit.hit(svc.redis, ratelimit.bucket(svc.settings.redis_prefix, "my-sessions", str(who.id)),
                        CALLS_PER_MINUTE, 60)  # fmt: skip
    return who


async def list_mine(request: Request) -> Response:
    who = await _user(request)
    rows = await services(request).pool.fetch(
        "SELECT id, created_at, last_used_at, expires_at, client FROM sessions WHERE user_id = $1 "
        "AND revoked_at IS NULL AND expires_at > now() AND created_at + make_interval(secs => $2) > now() "
        "ORDER BY last_used_at DESC, id LIMIT 1000",
        who.id,
        services(request).settings.session_max_age,
    )
    return reply([SessionOut(**dict(r), current=r["id"] == who.session_id) for r in rows])


async def end_one(request: Request) -> Response:
    who = await _user(request)
    session_id = path_uuid(request, "session_id")
    if not await services(request).pool.fetchval(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING true",
        session_id,
        who.id,
    ):
        raise not_found("session")
    return no_content()


async def end_others(request: Request) -> Response:
    who = await _user(request)
    await sessions.close_others(services(request).pool, who.id, who.session_id)
    return no_content()


ENDPOINTS = [
    Endpoint("GET", "/api/v1/me/sessions", list_mine, "My open sessions", None, list[SessionOut],
             errors=(401, 403, 429)),
    Endpoint("DELETE", "/api/v1/me/sessions", end_others, "End every session but this one", None, None, 204,
             errors=(401, 403, 429)),
    Endpoint("DELETE", "/api/v1/me/sessions/{session_id:uuid}", end_one, "End one of my sessions", None, None,
             204, errors=(401, 403, 404, 429)),
]  # fmt: skip
