"""The package itself: standard library only, no server code; the pure rules (Retry-After, backoff,
argument checks) need no server."""

from __future__ import annotations

import email.utils
import os
import subprocess
import sys
import time

import pytest
from experimentation_sdk import ExperimentationClient
from experimentation_sdk.retry import Backoff, retry_after

IMPORTS_NOTHING_ELSE = """
import sys
before = set(sys.modules)
import experimentation_sdk
loaded = {m.split(".")[0] for m in set(sys.modules) - before}
stdlib = set(sys.stdlib_module_names)
print(sorted(m for m in loaded if m not in stdlib and m not in ("experimentation_sdk", "_distutils_hack")))
"""


def test_imports_only_the_standard_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS_NOTHING_ELSE], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "[]"


def test_retry_after_forms() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(" 0.5 ") == 0.5
    assert retry_after("-4") == 0.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    hint = retry_after(in_ten)
    assert hint is not None and 8 <= hint <= 10


def test_backoff_is_jittered_capped_and_never_sooner_than_retry_after() -> None:
    backoff = Backoff(base=0.5, cap=30, max_retry_after=60)
    assert all(0 <= backoff.delay(n, None) <= min(30, 0.5 * 2 ** (n - 1)) for n in range(1, 40) for _ in range(20))
    assert all(backoff.delay(1, 5.0) >= 5.0 for _ in range(20))
    assert backoff.delay(1, 3600.0) == 60  # a huge Retry-After is clamped


def test_key_from_the_environment_and_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPERIMENTATION_API_KEY", "ep_live_from_env")
    client = ExperimentationClient(base_url="http://127.0.0.1:9", flush_at_exit=False)
    assert client.options.api_key == "ep_live_from_env"
    client.close(0.1)
    monkeypatch.delenv("EXPERIMENTATION_API_KEY")
    with pytest.raises(ValueError, match="EXPERIMENTATION_API_KEY"):
        ExperimentationClient(base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="base_url"):
        ExperimentationClient("ep_live_x", "ftp://example.com")
    with pytest.raises(ValueError, match="queue_full"):
        ExperimentationClient("ep_live_x", "http://127.0.0.1:9", queue_full="wait")  # type: ignore[arg-type]
    assert os.environ.get("EXPERIMENTATION_API_KEY") is None
