"""Settings, read from the environment once at process start into a frozen dataclass."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


class Secret(str):
    """A string whose repr never shows its value (kept out of logs and tracebacks)."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return default if raw in (None, "") else int(raw)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return default if raw in (None, "") else float(raw)


def _dedup_window(env: Mapping[str, str]) -> int:
    days = _int(env, "EVENTPLANE_DEDUP_WINDOW_DAYS", 7)
    assert 1 <= days <= 3650, "EVENTPLANE_DEDUP_WINDOW_DAYS is a whole number of days from 1 to 3650"
    return days


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    return Secret(env[name]) if env.get(name) else None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return (env.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


def _addresses(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks (checked here, so a typo fails at start)."""
    out = tuple(a.strip() for a in (env.get(name) or "").split(",") if a.strip())
    for address in out:
        ipaddress.ip_network(address, strict=False)
    return out


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated exact origins (scheme://host[:port]); never "*": the API answers to bearer tokens."""
    origins = tuple(o.strip().rstrip("/") for o in (env.get(name) or "").split(",") if o.strip())
    if "*" in origins or any("://" not in o for o in origins):
        raise ValueError(f"{name} takes exact origins such as https://dashboard.example.com, not {origins}")
    return origins


@dataclass(frozen=True)
class Settings:
    """Everything a process may be configured with. Hot code receives this object; it never reads os.environ."""

    # Out of reprs: they carry passwords (the embedded Valkey's is in REDIS_URL).
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    data_dir: Path = Path(".eventplane")
    redis_prefix: str = "ep:"
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8000
    api_host: str = "127.0.0.1"
    api_port: int = 8001
    # Edge limits (bytes / counts); see README "Event format".
    max_body_bytes: int = 500 * 1024
    max_event_bytes: int = 32 * 1024
    max_batch_events: int = 2500
    body_timeout: float = 15.0  # seconds for the whole request body to arrive
    # Queue: the edge refuses new events (503) while more than this many are queued and not yet stored.
    queue_high_water: int = 2_000_000
    # The edge never puts more than this many events into one arq job.
    job_max_events: int = 5000
    retry_after_seconds: int = 5
    # Key cache: local entries live this long; pub/sub invalidation removes them sooner.
    key_cache_ttl: float = 300.0
    negative_key_cache_ttl: float = 30.0
    # A worker takes up to worker_max_jobs queued jobs at once and commits their rows together, in
    # transactions of up to worker_batch_rows rows gathered for at most worker_batch_age seconds,
    # worker_flush_concurrency of them at a time.
    worker_max_jobs: int = 64
    worker_batch_rows: int = 5000
    worker_batch_age: float = 0.02
    worker_flush_concurrency: int = 2
    worker_metrics_port: int = 9101  # 0: off
    # message_id is deduplicated against copies committed this many UTC days back (workers/ledger.py).
    dedup_window_days: int = 7
    log_format: str = "json"  # or "text"
    log_level: str = "INFO"
    worker_poll_delay: float = 0.05
    # Seconds the edge may take, once uvicorn has finished its requests, to flush and stop its tasks.
    shutdown_timeout: float = 10.0
    # arq's limit on one job. A killed worker's batch is run again by another worker once arq's
    # in-progress mark expires, job_timeout + 10 s after it started.
    job_timeout: float = 20.0
    admin_token: Secret | None = field(default=None, repr=False)
    max_workspaces_per_user: int = 20
    # Unset: a random secret is made once and kept in data_dir/jwt_secret (mode 0600); see api/app.py.
    jwt_secret: Secret | None = field(default=None, repr=False)
    # Management API (api/): sessions, invitations, rate limits, password hashing.
    access_token_ttl: int = 1800
    refresh_token_ttl: int = 30 * 24 * 3600
    session_max_age: int = 30 * 24 * 3600  # a session ends this long after login, whatever its refreshes
    invitation_ttl: int = 7 * 24 * 3600
    login_limit_per_email: int = 10  # failed attempts per (email, client address) per login_window_seconds
    login_limit_per_ip: int = 100
    login_window_seconds: int = 300
    invite_limit_per_workspace: int = 50  # invitations per invite_window_seconds
    invite_window_seconds: int = 3600
    signup_limit_per_ip: int = 10  # sign-ups per client address per signup_window_seconds
    signup_window_seconds: int = 3600
    password_hash_concurrency: int = 2  # argon2 hashes at once (each takes password_memory_kib)
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile). Tests lower them.
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    api_max_body_bytes: int = 64 * 1024
    live_max_streams: int = 5  # live event streams open at once per workspace (all api processes)
    live_queue_events: int = 1000  # events a live stream holds for a slow client before dropping it
    # Browser origins (the dashboard) allowed to call the api with CORS; empty: no CORS headers at all.
    dashboard_origins: tuple[str, ...] = ()
    # Served behind HTTPS (TLS at a proxy): the api then sends Strict-Transport-Security.
    behind_https: bool = False
    # Signs key-cache entries in Redis (edge and api must share it). Unset: made once in data_dir/cache_secret.
    cache_secret: Secret | None = field(default=None, repr=False)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs); empty: nobody's.
    trusted_proxies: tuple[str, ...] = ()
    # Seconds a client may take to send a request's headers (both servers), then the connection is closed.
    header_timeout: float = 10.0
    # When set, GET /metrics on the edge and the api needs `Authorization: Bearer <token>`.
    metrics_token: Secret | None = field(default=None, repr=False)
    # Multiplies every plan's ingestion rate and burst (eventplane/plans.py); 0 turns rate limiting off.
    rate_limit_scale: float = 1.0
    # Feature flags at the edge (ingest/configcache.py, ingest/sse.py, ingest/exposures.py).
    config_cache_ttl: float = 300.0  # seconds an edge keeps a workspace's config (a change drops it sooner)
    sse_max_per_workspace: int = 100  # open config streams per workspace per edge, then 429
    sse_max_connections: int = 2000  # open config streams per edge, then 429
    sse_heartbeat: float = 15.0  # seconds between comment lines on an idle stream
    exposure_window: float = 3600.0  # an edge records a unit's exposure to an experiment once per window
    exposure_cache_entries: int = 100_000  # (unit, experiment) pairs an edge remembers for that
    # Webhooks (workers/webhooks.py): events per POST, its timeout, the retry backoff (doubling from
    # _base to _max seconds), and how long a destination may fail without a success before it is paused.
    webhook_batch_size: int = 100
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 1.0
    webhook_retry_max: float = 300.0
    webhook_pause_after: float = 3 * 24 * 3600.0
    # Off: webhooks to loopback, private, link-local and other internal addresses are refused, when saved
    # and at delivery (eventplane/webhook_urls.py). On: for receivers inside the operator's own network.
    webhook_allow_private: bool = False
    # Identity tokens (ingest/identity.py) must expire at most this many seconds after they were issued.
    identity_token_max_lifetime: int = 3600
    # Mail (eventplane/mail.py): SMTP server (unset: one .eml per message in data_dir/mailbox), sender,
    # the public base URL of links, retry backoff (doubling from mail_retry_base s, capped at 15 min).
    smtp_url: Secret | None = field(default=None, repr=False)
    mail_from: str = "EventPlane <no-reply@eventplane.local>"
    public_url: str = "http://127.0.0.1:8001"
    # The edge's public base URL, as browsers reach it: the dashboard sends its test events there (and the
    # dashboard's Content-Security-Policy allows connecting to its origin).
    edge_public_url: str = "http://127.0.0.1:8000"
    mail_retry_base: float = 2.0
    # Accounts: link lifetimes; requiring a verified email to create workspaces and keys (off: the quickstart).
    verify_token_ttl: int = 2 * 24 * 3600
    reset_token_ttl: int = 3600
    require_verified_email: bool = False
    resend_limit_per_invitation: int = 3  # resends of one invitation per invite_window_seconds
    account_mail_limit: int = 5  # verification/reset/email-change mails per address per account_mail_window
    account_mail_window: int = 3600
    # The instance a worker serves (EVENTPLANE_INSTANCE, `eventplane worker --instance NAME`; eventplane/
    # instances.py): empty for the default one, the hub's own servers.
    instance: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        admin = env.get("ADMIN_TOKEN") or None
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            data_dir=Path(env.get("EVENTPLANE_DATA_DIR") or ".eventplane").resolve(),
            redis_prefix=env.get("EVENTPLANE_REDIS_PREFIX") or "ep:",
            ingest_host=env.get("EVENTPLANE_INGEST_HOST") or "127.0.0.1",
            ingest_port=_int(env, "EVENTPLANE_INGEST_PORT", 8000),
            api_host=env.get("EVENTPLANE_API_HOST") or "127.0.0.1",
            api_port=_int(env, "EVENTPLANE_API_PORT", 8001),
            body_timeout=_float(env, "EVENTPLANE_BODY_TIMEOUT", 15.0),
            queue_high_water=_int(env, "EVENTPLANE_QUEUE_HIGH_WATER", 2_000_000),
            job_max_events=_int(env, "EVENTPLANE_JOB_MAX_EVENTS", 5000),
            key_cache_ttl=_float(env, "EVENTPLANE_KEY_CACHE_TTL", 300.0),
            worker_max_jobs=_int(env, "EVENTPLANE_WORKER_MAX_JOBS", 64),
            worker_batch_rows=_int(env, "EVENTPLANE_WORKER_BATCH_ROWS", 5000),
            worker_batch_age=_float(env, "EVENTPLANE_WORKER_BATCH_AGE", 0.02),
            worker_flush_concurrency=_int(env, "EVENTPLANE_WORKER_FLUSH_CONCURRENCY", 2),
            worker_metrics_port=_int(env, "EVENTPLANE_WORKER_METRICS_PORT", 9101),
            dedup_window_days=_dedup_window(env),
            log_format=env.get("EVENTPLANE_LOG_FORMAT") or "json",
            log_level=env.get("EVENTPLANE_LOG_LEVEL") or "INFO",
            worker_poll_delay=_float(env, "EVENTPLANE_WORKER_POLL_DELAY", 0.05),
            shutdown_timeout=_float(env, "EVENTPLANE_SHUTDOWN_TIMEOUT", 10.0),
            job_timeout=_float(env, "EVENTPLANE_JOB_TIMEOUT", 20.0),
            admin_token=Secret(admin) if admin else None,
            max_workspaces_per_user=_int(env, "MAX_WORKSPACES_PER_USER", 20),
            jwt_secret=Secret(env["EVENTPLANE_JWT_SECRET"]) if env.get("EVENTPLANE_JWT_SECRET") else None,
            login_limit_per_email=_int(env, "EVENTPLANE_LOGIN_LIMIT_PER_EMAIL", 10),
            login_limit_per_ip=_int(env, "EVENTPLANE_LOGIN_LIMIT_PER_IP", 100),
            invite_limit_per_workspace=_int(env, "EVENTPLANE_INVITE_LIMIT_PER_WORKSPACE", 50),
            session_max_age=_int(env, "EVENTPLANE_SESSION_MAX_AGE", 30 * 24 * 3600),
            signup_limit_per_ip=_int(env, "EVENTPLANE_SIGNUP_LIMIT_PER_IP", 10),
            password_hash_concurrency=_int(env, "EVENTPLANE_PASSWORD_HASH_CONCURRENCY", 2),
            dashboard_origins=_origins(env, "EVENTPLANE_DASHBOARD_ORIGINS"),
            behind_https=_flag(env, "EVENTPLANE_BEHIND_HTTPS"),
            cache_secret=_secret(env, "EVENTPLANE_CACHE_SECRET"),
            trusted_proxies=_addresses(env, "EVENTPLANE_TRUSTED_PROXIES"),
            header_timeout=_float(env, "EVENTPLANE_HEADER_TIMEOUT", 10.0),
            metrics_token=_secret(env, "EVENTPLANE_METRICS_TOKEN"),
            rate_limit_scale=_float(env, "EVENTPLANE_RATE_LIMIT_SCALE", 1.0),
            live_max_streams=_int(env, "EVENTPLANE_LIVE_MAX_STREAMS", 5),
            live_queue_events=_int(env, "EVENTPLANE_LIVE_QUEUE_EVENTS", 1000),
            config_cache_ttl=_float(env, "EVENTPLANE_CONFIG_CACHE_TTL", 300.0),
            sse_max_per_workspace=_int(env, "EVENTPLANE_SSE_MAX_PER_WORKSPACE", 100),
            sse_max_connections=_int(env, "EVENTPLANE_SSE_MAX_CONNECTIONS", 2000),
            sse_heartbeat=_float(env, "EVENTPLANE_SSE_HEARTBEAT", 15.0),
            exposure_window=_float(env, "EVENTPLANE_EXPOSURE_WINDOW", 3600.0),
            exposure_cache_entries=_int(env, "EVENTPLANE_EXPOSURE_CACHE_ENTRIES", 100_000),
            webhook_batch_size=_int(env, "EVENTPLANE_WEBHOOK_BATCH_SIZE", 100),
            webhook_timeout=_float(env, "EVENTPLANE_WEBHOOK_TIMEOUT", 10.0),
            webhook_retry_base=_float(env, "EVENTPLANE_WEBHOOK_RETRY_BASE", 1.0),
            webhook_retry_max=_float(env, "EVENTPLANE_WEBHOOK_RETRY_MAX", 300.0),
            webhook_pause_after=_float(env, "EVENTPLANE_WEBHOOK_PAUSE_AFTER", 3 * 24 * 3600.0),
            webhook_allow_private=_flag(env, "EVENTPLANE_WEBHOOK_ALLOW_PRIVATE"),
            identity_token_max_lifetime=_int(env, "EVENTPLANE_IDENTITY_TOKEN_MAX_LIFETIME", 3600),
            smtp_url=_secret(env, "EVENTPLANE_SMTP_URL"),
            mail_from=env.get("EVENTPLANE_MAIL_FROM") or "EventPlane <no-reply@eventplane.local>",
            public_url=(env.get("EVENTPLANE_PUBLIC_URL") or "http://127.0.0.1:8001").rstrip("/"),
            edge_public_url=(env.get("EVENTPLANE_EDGE_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            mail_retry_base=_float(env, "EVENTPLANE_MAIL_RETRY_BASE", 2.0),
            invitation_ttl=_int(env, "EVENTPLANE_INVITATION_TTL", 7 * 24 * 3600),
            reset_token_ttl=_int(env, "EVENTPLANE_RESET_TOKEN_TTL", 3600),
            require_verified_email=_flag(env, "EVENTPLANE_REQUIRE_VERIFIED_EMAIL"),
            instance="" if (env.get("EVENTPLANE_INSTANCE") or "default") == "default" else env["EVENTPLANE_INSTANCE"],
        )

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        return replace(self, database_url=database_url, redis_url=redis_url)

    @property
    def dsn(self) -> str:
        assert self.database_url, "database_url is resolved at start-up (eventplane.servers.resolve)"
        return self.database_url

    @property
    def redis_dsn(self) -> str:
        assert self.redis_url, "redis_url is resolved at start-up (eventplane.servers.resolve)"
        return self.redis_url
