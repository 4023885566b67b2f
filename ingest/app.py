"""The edge's ASGI app. The two tracking routes are plain ASGI (no Request/Response objects, no
middleware); Starlette serves the rest (health, 404s) and runs the lifespan that owns every pool."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventplane import apikeys, db, keyauth, metrics_access, scopes, servers, tasks
from eventplane.errors import ApiError
from eventplane.instances import Instance
from eventplane.rates import Rates
from eventplane.redis_client import connect_queue_writer, connect_redis
from eventplane.settings import Settings
from ingest import cors, flags, segment, sse
from ingest.asgi import Headers, Receive, Scope, Send, headers_of, respond
from ingest.auth import KeyCache, extract_key
from ingest.batcher import Batcher
from ingest.body import ClientDisconnected, Deadlines, content_length, read_body
from ingest.client_report import ClientReports
from ingest.identity import IdentityVerifier
from ingest.instances import Router
from ingest.metrics import EdgeMetrics
from ingest.transform import Limits, parse_batch, parse_track, to_rows

log = logging.getLogger("eventplane.ingest")
TRACK = "/api/v1/tracking/track"
BATCH = "/api/v1/tracking/batch"
ROUTE_NAMES = {TRACK: "track", BATCH: "batch"}  # metric labels; the Segment routes are "segment"
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)
ENQUEUE_CONNECTIONS = 2  # enqueue round trips in flight at once
ACCEPTED_CONTENT_TYPES = (b"application/json", b"text/plain")  # text/plain: browsers' sendBeacon


@dataclass
class Edge:
    settings: Settings
    redis: Redis
    pool: asyncpg.Pool
    key_cache: KeyCache
    batcher: Batcher
    limits: Limits
    metrics: EdgeMetrics
    deadlines: Deadlines
    tasks: list[asyncio.Task[None]]
    rates: Rates
    reports: ClientReports
    flags: flags.Flags
    identity: IdentityVerifier
    router: Router  # one batcher per instance; `batcher` is the default instance's


class IngestApp:
    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self.edge: Edge | None = None
        self._rest = Starlette(
            routes=[
                Route("/healthz", self._healthz),
                Route("/readyz", self._readyz),
                Route("/metrics", self._metrics),
            ],
            lifespan=self._lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"] in (TRACK, BATCH) or scope["path"] in segment.ROUTES):
            await self._tracking(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith(flags.PREFIXES):
            assert self.edge is not None, "lifespan has not run"
            await self.edge.flags(scope, receive, send, _request_id(headers_of(scope)))
        else:
            await self._rest(scope, receive, send)

    async def _tracking(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = self.edge
        assert edge is not None, "lifespan has not run"
        stats = edge.metrics.stats
        route = ROUTE_NAMES.get(scope["path"]) or "segment"
        headers = headers_of(scope)
        origin = headers.get(b"origin")
        if origin is not None:  # a browser: answer its preflight, let the page read the answer
            if cors.is_preflight(scope["method"], origin):
                await cors.preflight(send, origin)
                return
            send = cors.allowing(send, origin)
        request_id = _request_id(headers)
        try:
            accepted = await self._accept(edge, scope, headers, receive, request_id)
        except ApiError as error:
            stats.responses[route, error.status] += 1
            stats.rejections[error.code] += 1
            await respond(send, error.status, error.body(), request_id, error.headers)
        except ClientDisconnected:
            return
        except Exception:
            log.exception("unexpected error", extra={"path": scope["path"], "request_id": request_id})
            stats.responses[route, 500] += 1
            failure = ApiError(500, "INTERNAL_ERROR", "Unexpected error; nothing was accepted, retry")
            await respond(send, 500, failure.body(), request_id)
        else:
            stats.events_accepted += accepted
            if route == "segment":  # Segment's clients expect 200 and this body
                stats.responses[route, 200] += 1
                await respond(send, 200, segment.SUCCESS, request_id)
            else:
                stats.responses[route, 202] += 1
                await respond(send, 202, b'{"accepted":%d}' % accepted, request_id)

    async def _accept(self, edge: Edge, scope: Scope, headers: Headers, receive: Receive, request_id: str) -> int:
        if scope["method"] != "POST":
            raise ApiError(405, "METHOD_NOT_ALLOWED", "Use POST", None, {"allow": "POST"})
        key = extract_key(headers)
        is_segment = scope["path"] in segment.ROUTES
        # Segment's clients may send the key only in the body (writeKey): it is checked once that is read.
        lookup = edge.key_cache.get
        grant = await keyauth.authenticate(key, lookup, scopes.TRACK_WRITE) if key or not is_segment else None
        batcher = None if grant is None else await _queue_of(edge, grant)  # refused before reading the body
        body = await read_body(
            receive,
            limit=edge.settings.max_body_bytes,
            content_length=content_length(headers),
            gzipped=_gzipped(headers),
            deadlines=edge.deadlines,
        )
        if grant is None:  # a Segment route without a key in its headers: the body's writeKey
            body_key = segment.write_key(body)
            if not body_key:
                raise keyauth.KeyRefused(401, "AUTH_ERROR", segment.MISSING_KEY, None, {"www-authenticate": "Bearer"})
            grant = await keyauth.authenticate(body_key, lookup, scopes.TRACK_WRITE)
            batcher = await _queue_of(edge, grant)
        if is_segment:
            parsed = segment.parse(scope["path"], body, edge.limits)
        else:
            parsed = (parse_track if scope["path"] == TRACK else parse_batch)(body, edge.limits)
        if b"origin" in headers:  # browsers only: servers' requests skip the lookup
            cors.check_origin(await edge.identity.config(grant.workspace_id), headers[b"origin"])
        await edge.identity.check(grant.workspace_id, headers, parsed.events)
        now_ns = time.time_ns()
        rows = to_rows(parsed, grant.workspace_id, now_ns // 1000, _year(now_ns))
        if rows:
            assert batcher is not None
            await batcher.submit(rows, request_id, grant.workspace_id, edge.rates.of(grant.info.plan))
        if parsed.report is not None:
            await edge.reports.record(grant.workspace_id, parsed.report, now_ns)
        edge.key_cache.touch(grant.key_id)
        return len(rows)

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _metrics(self, request: Request) -> Response:
        assert self.edge is not None
        refused = metrics_access.refusal(request.headers.get("authorization"), self.edge.settings.metrics_token)
        if refused is not None:
            return refused
        return Response(generate_latest(self.edge.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def _readyz(self, request: Request) -> Response:
        assert self.edge is not None
        checks = {"redis": False, "postgres": False}
        with contextlib.suppress(Exception):
            checks["redis"] = bool(await self.edge.redis.ping())
        with contextlib.suppress(Exception):
            checks["postgres"] = await self.edge.pool.fetchval("SELECT true", timeout=2) is True
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        settings = self._settings or servers.resolve(Settings.from_env()).settings
        redis = connect_redis(settings.redis_dsn)
        # min_size=0: the edge starts, and serves cached keys, while Postgres is down.
        pool = await db.create_pool(settings.dsn, min_size=0, max_size=4)
        redis_keys = apikeys.redis_keys(settings)
        key_cache = KeyCache(redis, pool, redis_keys, settings.key_cache_ttl, settings.negative_key_cache_ttl)
        metrics = EdgeMetrics(lambda: (key_cache.hits, key_cache.misses, key_cache.refused_entries))
        writers = [connect_queue_writer(settings.redis_dsn) for _ in range(ENQUEUE_CONNECTIONS)]
        batcher = Batcher(
            redis,
            writers,
            redis_keys,
            metrics,
            job_max_events=settings.job_max_events,
            high_water=settings.queue_high_water,
            retry_after=settings.retry_after_seconds,
        )

        def instance_batcher(instance: Instance) -> tuple[Batcher, list[Redis]]:
            depth_client = connect_redis(instance.redis_url)
            instance_writers = [connect_queue_writer(instance.redis_url) for _ in range(ENQUEUE_CONNECTIONS)]
            made = Batcher(
                depth_client, instance_writers, redis_keys, metrics, job_max_events=settings.job_max_events,
                high_water=settings.queue_high_water, retry_after=settings.retry_after_seconds, report_depth=False,
            )  # fmt: skip
            return made, [depth_client, *instance_writers]

        router = Router(batcher, pool, instance_batcher, settings.retry_after_seconds)
        deadlines = Deadlines(settings.body_timeout)
        identity = IdentityVerifier(
            redis, pool, redis_keys, settings.key_cache_ttl, settings.identity_token_max_lifetime
        )
        flag_routes = flags.build(settings, redis, pool, redis_keys, key_cache, router, deadlines, metrics, identity)
        background = [
            asyncio.create_task(coro, name=getattr(coro, "__qualname__", None))
            for coro in (
                batcher.run(),
                batcher.watch_depth(),
                key_cache.listen(),
                key_cache.flush_last_used(),
                identity.listen(),
                deadlines.sweep(),
                flag_routes.cache.listen(),
            )
        ]
        limits = Limits(settings.max_event_bytes, settings.max_batch_events)
        rates = Rates(settings.rate_limit_scale, settings.max_batch_events)
        reports = ClientReports(redis, redis_keys, metrics.stats, settings.retry_after_seconds)
        edge = self.edge = Edge(
            settings, redis, pool, key_cache, batcher, limits, metrics, deadlines, background, rates, reports,
            flag_routes, identity, router,
        )  # fmt: skip
        unchain = sse.close_on_signals(flag_routes.streams)
        try:
            yield
        finally:
            unchain()
            await self._shutdown(edge, writers)
            self.edge = None

    async def _shutdown(self, edge: Edge, writers: list[Redis]) -> None:
        """Flush, stop the background tasks, close. uvicorn waits for this without a limit, so every step
        is bounded: settings.shutdown_timeout in all (+ at most a second for each close)."""
        loop = asyncio.get_running_loop()
        within = edge.settings.shutdown_timeout
        deadline = loop.time() + within
        edge.flags.streams.close_all()
        try:
            async with asyncio.timeout_at(deadline):
                await edge.batcher.drain()
                await edge.key_cache.write_last_used()
        except TimeoutError:
            log.error("shutdown: events still unqueued after %.1f s are dropped; none was answered 202", within)
        await edge.router.close(max(deadline - loop.time(), 1.0))
        await tasks.stop(edge.tasks, max(deadline - loop.time(), 1.0), log)
        await db.close_pool(edge.pool, grace=max(deadline - loop.time(), 1.0))
        for client in (edge.redis, *writers):
            await client.aclose()  # each disconnect is bounded by socket_connect_timeout


async def _queue_of(edge: Edge, grant: keyauth.Grant) -> Batcher:
    """The batcher of the key's workspace's instance, if its queue takes events now (else 503)."""
    batcher = edge.router.known(grant.info.instance) or await edge.router.get(grant.info.instance)
    refusal = batcher.refusal()
    if refusal is not None:
        raise refusal
    return batcher


def _request_id(headers: Headers) -> str:
    """The caller's X-Request-Id when it is a sane token, else a new one (unique per process: random
    prefix, counter); it follows the events into the queued job and the worker's commit log line."""
    given = headers.get(b"x-request-id")
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given.decode()
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def _year(now_ns: int, _cache: list[int] = [0, 0]) -> int:  # noqa: B006 - a deliberate one-slot cache
    """The current UTC year, recomputed at most once a minute."""
    if now_ns - _cache[0] > 60_000_000_000:
        _cache[:] = [now_ns, time.gmtime(now_ns // 1_000_000_000).tm_year]
    return _cache[1]


def _gzipped(headers: Headers) -> bool:
    content_type = headers.get(b"content-type")
    if content_type is not None and content_type.split(b";")[0].strip().lower() not in ACCEPTED_CONTENT_TYPES:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the body as JSON with 'Content-Type: application/json'")
    encoding = (headers.get(b"content-encoding") or b"identity").strip().lower()
    if encoding not in (b"gzip", b"identity"):
        raise ApiError(415, "UNSUPPORTED_ENCODING", "Content-Encoding must be gzip or absent")
    return encoding == b"gzip"


def create_app(settings: Settings | None = None) -> IngestApp:
    return IngestApp(settings)


app = create_app()
