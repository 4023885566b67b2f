"""The design most people write first, as a reference: a Starlette route that checks the key and
INSERTs the event into Postgres on the request path, one row and one commit per event.

Run with `uvicorn loadtests.naive:app --loop uvloop --http httptools` and DATABASE_URL set. The key check
is a dict lookup (keys are loaded at start) so that the figure measures the per-event INSERT, which is
the naive design's cost, and not a second query.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventplane import keyformat

INSERT = """
INSERT INTO events (workspace_id, message_id, event_type, user_id, anonymous_id, value, properties,
                    "timestamp", received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9)
"""


async def track(request: Request) -> Response:
    workspace = request.app.state.keys.get(keyformat.hash_key(request.headers.get("x-api-key", "")))
    if workspace is None:
        return JSONResponse({"error": "unknown key"}, status_code=401)
    event = orjson.loads(await request.body())
    now = dt.datetime.now(dt.UTC)
    stamp = event.get("timestamp")
    await request.app.state.pool.execute(
        INSERT,
        workspace,
        event.get("message_id") or str(uuid.uuid4()),
        event["event_type"],
        event.get("user_id"),
        event.get("anonymous_id"),
        event.get("value"),
        orjson.dumps(event.get("properties") or {}).decode(),
        dt.datetime.fromisoformat(stamp) if stamp else now,
        now,
    )
    return JSONResponse({"accepted": 1}, status_code=202)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=4, max_size=16)
    assert pool is not None
    rows = await pool.fetch("SELECT key_hash, workspace_id FROM api_keys WHERE is_active")
    app.state.keys = {row["key_hash"]: row["workspace_id"] for row in rows}
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = Starlette(
    routes=[Route("/api/v1/tracking/track", track, methods=["POST"]), Route("/healthz", healthz)],
    lifespan=lifespan,
)
