"""The edge's flag routes, plain ASGI like the tracking ones (evaluation is the hottest read we serve):

    POST /api/v1/feature-flags/{key}/evaluate   flags:read        {"key", "enabled", "value", "reason"[, "variant"]}
    POST /api/v1/experiments/{key}/assign       experiments:read  {"key", "variant", "reason"}; records exposures
    GET  /api/v1/sdk/config                     flags:read        the config document, ETag, 304
    GET  /api/v1/sdk/config/stream              flags:read        server-sent events (ingest/sse.py)
    POST /ofrep/v1/evaluate/flags/{key}         flags:read        OFREP (ingest/ofrep.py)
    POST /ofrep/v1/evaluate/flags               flags:read        OFREP bulk, ETag, 304

Answers are computed by the SDK's own evaluation module, so the edge and a local SDK agree by construction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Annotated, Any

import asyncpg
import msgspec
from experimentation_sdk import evaluation
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from eventplane import keyauth, scopes
from eventplane.errors import ApiError, validation
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings
from ingest import cors, ofrep
from ingest.asgi import Receive, Scope, Send, respond
from ingest.auth import KeyCache, extract_key
from ingest.body import ClientDisconnected, Deadlines, content_length, read_body
from ingest.configcache import Cached, ConfigCache
from ingest.exposures import Exposures
from ingest.identity import HEADER, IdentityVerifier
from ingest.instances import Router
from ingest.metrics import EdgeMetrics, EdgeStats
from ingest.sse import Streams

log = logging.getLogger("eventplane.ingest.flags")
PREFIXES = ("/api/v1/feature-flags/", "/api/v1/experiments/", "/api/v1/sdk/", "/ofrep/")
_EVALUATE = re.compile(r"/api/v1/feature-flags/([^/]+)/evaluate")
_ASSIGN = re.compile(r"/api/v1/experiments/([^/]+)/assign")
_OFREP_ONE = re.compile(r"/ofrep/v1/evaluate/flags/([^/]+)")
CONFIG = "/api/v1/sdk/config"
STREAM = "/api/v1/sdk/config/stream"
OFREP_BULK = "/ofrep/v1/evaluate/flags"
MAX_BODY_BYTES = 64 * 1024
UnitId = Annotated[str, msgspec.Meta(max_length=255)]
_WANTED = frozenset(
    {b"x-api-key", b"authorization", b"content-length", b"if-none-match", b"x-request-id", b"origin", HEADER}
)


class Context(msgspec.Struct):
    """An evaluation context. The unit is user_id, else anonymous_id; an empty one is no unit (as in the SDK)."""

    user_id: UnitId | None = None
    anonymous_id: UnitId | None = None
    attributes: dict[str, Any] = {}

    def as_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "anonymous_id": self.anonymous_id, "attributes": self.attributes}


_context = msgspec.json.Decoder(Context)
_encode = msgspec.json.encode


def parse_context(body: bytes) -> Context:
    if not body.strip():
        return Context()
    try:
        return _context.decode(body)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$")
        field = path.rstrip("`").lstrip(".") or "$"
        raise validation(f"{field}: {message}", field) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "INVALID_JSON", f"Body is not valid JSON: {exc}") from None


def etag_matches(if_none_match: bytes | None, etag: str) -> bool:
    """RFC 9110 weak comparison against each listed tag, or `*`."""
    if if_none_match is None:
        return False
    for tag in if_none_match.decode("latin-1").split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


async def not_modified(send: Send, etag: str, request_id: str) -> None:
    headers = [(b"etag", etag.encode()), (b"cache-control", b"no-cache"), (b"x-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": 304, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class Flags:
    def __init__(
        self,
        settings: Settings,
        key_cache: KeyCache,
        cache: ConfigCache,
        exposures: Exposures,
        streams: Streams,
        deadlines: Deadlines,
        stats: EdgeStats,
        identity: IdentityVerifier,
    ) -> None:
        self.settings = settings
        self.identity = identity  # allowed_origins, and identity verification of assignments
        self.key_cache = key_cache
        self.cache = cache
        self.exposures = exposures
        self.streams = streams
        self._deadlines = deadlines
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        path: str = scope["path"]
        route = _route_of(path)
        headers = {k: v for k, v in scope["headers"] if k in _WANTED}
        origin = headers.get(b"origin")
        if origin is not None:  # a browser SDK or OpenFeature web provider
            if cors.is_preflight(scope["method"], origin):
                await cors.preflight(send, origin)
                return
            send = cors.allowing(send, origin)
        ofrep_route = route.startswith("ofrep")
        try:
            status = await self._dispatch(route, path, scope, headers, receive, send, request_id)
        except ofrep.Failure as failure:
            status = failure.status
            await respond(send, failure.status, failure.body(), request_id)
        except ApiError as error:
            status = error.status
            self._stats.rejections[error.code] += 1
            body = ofrep.general(error) if ofrep_route and error.status >= 500 else error.body()
            await respond(send, error.status, body, request_id, error.headers)
        except ClientDisconnected:
            return
        except Exception:
            log.exception("unexpected error", extra={"path": path, "request_id": request_id})
            status = 500
            unexpected = ApiError(500, "INTERNAL_ERROR", "Unexpected error; retry")
            await respond(send, 500, ofrep.general(unexpected) if ofrep_route else unexpected.body(), request_id)
        self._stats.responses[route, status] += 1

    async def _dispatch(
        self, route: str, path: str, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send,
        request_id: str,
    ) -> int:  # fmt: skip
        method = "GET" if route in ("config", "stream") else "POST"
        if route == "unknown":
            raise ApiError(404, "NOT_FOUND", f"No route {path}")
        if scope["method"] != method:
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"Use {method}", None, {"allow": method})
        if route == "config":
            return await self._config(headers, send, request_id)
        if route == "stream":
            workspace_id = await self._authorize(headers, scopes.FLAGS_READ)
            await self.streams.serve(workspace_id, receive, send, request_id)
            return 200
        needed = scopes.EXPERIMENTS_READ if route == "assign" else scopes.FLAGS_READ
        workspace_id = await self._authorize(headers, needed)
        body = await read_body(
            receive, limit=MAX_BODY_BYTES, content_length=content_length(headers), gzipped=False,
            deadlines=self._deadlines,
        )  # fmt: skip
        cached = await self.cache.get(workspace_id)
        if route == "evaluate":
            answer = self._evaluate(cached, _key(_EVALUATE, path), parse_context(body))
        elif route == "assign":
            # An assignment writes for its user (sticky variant, `$exposure`): verified as an event is.
            # Evaluations only read, as the config document any key holder fetches does: not checked.
            context = parse_context(body)
            await self.identity.check_user(workspace_id, headers, context.user_id)
            answer = await self._assign(cached, _key(_ASSIGN, path), context, request_id)
        elif route == "ofrep":
            answer = ofrep.evaluate_one(cached, _key(_OFREP_ONE, path), body)
        else:
            bulk = ofrep.evaluate_bulk(cached, body)
            if etag_matches(headers.get(b"if-none-match"), bulk.etag):
                await not_modified(send, bulk.etag, request_id)
                return 304
            await respond(send, 200, bulk.body, request_id, {"etag": bulk.etag, "cache-control": "no-cache"})
            return 200
        await respond(send, 200, answer, request_id)
        return 200

    async def _authorize(self, headers: dict[bytes, bytes], needed: str) -> str:
        """The key's workspace, if the key grants `needed` (the one authenticator, as the tracking routes)
        and, for a browser, its origin is one the workspace allows."""
        grant = await keyauth.authenticate(extract_key(headers), self.key_cache.get, needed)
        self.exposures.note(grant.workspace_id, grant.info.instance)
        if b"origin" in headers:
            cors.check_origin(await self.identity.config(grant.workspace_id), headers[b"origin"])
        self.key_cache.touch(grant.key_id)
        return grant.workspace_id

    async def _config(self, headers: dict[bytes, bytes], send: Send, request_id: str) -> int:
        cached = await self.cache.get(await self._authorize(headers, scopes.FLAGS_READ))
        if etag_matches(headers.get(b"if-none-match"), cached.etag):
            await not_modified(send, cached.etag, request_id)
            return 304
        await respond(send, 200, cached.config.body, request_id, {"etag": cached.etag, "cache-control": "no-cache"})
        return 200

    def _evaluate(self, cached: Cached, key: str, context: Context) -> bytes:
        flag = cached.flags.get(key)
        if flag is None:
            raise ApiError(404, "FLAG_NOT_FOUND", f"No feature flag '{key}' in this workspace", {"key": key})
        return _encode(evaluation.evaluate_flag(flag, context.as_dict()).as_dict())

    async def _assign(self, cached: Cached, key: str, context: Context, request_id: str) -> bytes:
        experiment = cached.experiments.get(key)
        if experiment is None:
            raise ApiError(404, "EXPERIMENT_NOT_FOUND", f"No experiment '{key}' in this workspace", {"key": key})
        ws = cached.config.workspace_id
        ctx = context.as_dict()
        unit = evaluation.unit_of(ctx)
        recorded = None
        if unit is not None and experiment.get("status") == "running":
            recorded = await self.exposures.recorded(ws, experiment, unit)
        result = evaluation.assign(experiment, ctx, lambda _e, _u: recorded)
        if result.variant is not None and unit is not None:
            variant = result.variant
            if result.reason == "SPLIT":
                variant = await self.exposures.record(ws, experiment, unit, variant)
                if variant != result.variant:  # another edge recorded this unit first: its answer counts
                    result = evaluation.Assignment(variant, "STICKY")
            user_id, anonymous_id = context.user_id or None, context.anonymous_id or None
            await self.exposures.expose(ws, experiment, variant, user_id, anonymous_id, request_id)
        return _encode({"key": key, **result.as_dict()})


def _route_of(path: str) -> str:
    if path == CONFIG:
        return "config"
    if path == STREAM:
        return "stream"
    if path == OFREP_BULK:
        return "ofrep_bulk"
    for route, pattern in (("evaluate", _EVALUATE), ("assign", _ASSIGN), ("ofrep", _OFREP_ONE)):
        if pattern.fullmatch(path):
            return route
    return "unknown"


def _key(pattern: re.Pattern[str], path: str) -> str:
    match = pattern.fullmatch(path)
    assert match is not None  # _route_of matched it
    return match[1]


class _Collector(Collector):
    def __init__(self, flags: Flags) -> None:
        self._flags = flags

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        cache, streams = self._flags.cache, self._flags.streams
        lookups = CounterMetricFamily("eventplane_ingest_config_cache_lookups", "Config lookups", labels=["result"])
        lookups.add_metric(["hit"], cache.hits)
        lookups.add_metric(["miss"], cache.misses)
        yield lookups
        yield GaugeMetricFamily("eventplane_ingest_config_streams", "Open config streams", value=streams.open)
        yield CounterMetricFamily("eventplane_ingest_config_pushes", "Config events streamed", value=streams.pushed)
        queued = self._flags.exposures.queued
        yield CounterMetricFamily("eventplane_ingest_exposures_queued", "$exposure events queued", value=queued)


def build(
    settings: Settings, redis: Redis, pool: asyncpg.Pool, redis_keys: RedisNames, key_cache: KeyCache, router: Router,
    deadlines: Deadlines, metrics: EdgeMetrics, identity: IdentityVerifier,
) -> Flags:  # fmt: skip
    cache = ConfigCache(redis, pool, redis_keys, settings.config_cache_ttl)
    exposures = Exposures(
        redis, redis_keys, router, window=settings.exposure_window, max_entries=settings.exposure_cache_entries
    )
    streams = Streams(
        cache, per_workspace=settings.sse_max_per_workspace, total=settings.sse_max_connections,
        heartbeat=settings.sse_heartbeat,
    )  # fmt: skip
    flags = Flags(settings, key_cache, cache, exposures, streams, deadlines, metrics.stats, identity)
    metrics.registry.register(_Collector(flags))
    return flags
