"""The compiled load generators, pinned to the load core: wrk (closed loop) and h2load (constant rate).

wrk keeps `connections` requests in flight and sends the next as soon as one is answered: it finds the
peak. Paced by post.lua, it also offers the pipeline a fixed rate with a fresh message id per event.
h2load `--rps` sends at a fixed rate per connection whether or not the server keeps up, so its
latencies are those of a server at that load (a closed loop would slow down with the server and hide
queueing: "coordinated omission"). Each h2load connection is given at most PER_CONNECTION_RPS so that a
request is almost never still in flight when its successor is due; h2load's per-request log gives
every latency, from which the percentiles are computed exactly.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from loadtests.stack import LOAD_CORE

LUA = Path(__file__).resolve().parent / "post.lua"
PACKAGES = {"wrk": "wrk", "h2load": "nghttp2-client"}
PER_CONNECTION_RPS = 50
WARM_UP_SECONDS = 1


def ensure_tools() -> None:
    """Install wrk and h2load from Debian's packages when missing (needs root and apt-get)."""
    missing = [pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"missing {', '.join(missing)}: install them (apt-get install -y {' '.join(missing)})")
    print(f"installing {', '.join(missing)} with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, stdout=subprocess.DEVNULL)


@dataclass(frozen=True)
class Closed:
    """A wrk run. Latencies in milliseconds; `errors` counts socket errors, timeouts and statuses >= 400."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_second(self) -> float:
        return max(0, self.requests - self.errors) / self.seconds


@dataclass(frozen=True)
class Constant:
    """An h2load constant-rate run: the offered rate, what was answered, and latency percentiles (ms)."""

    offered_rps: float
    achieved_rps: float
    requests: int
    failed: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def write_lines(path: Path, lines: list[str] | list[bytes]) -> Path:
    path.write_bytes(b"\n".join(x.encode() if isinstance(x, str) else x for x in lines) + b"\n")
    return path


def wrk(
    url: str,
    keys_file: Path,
    bodies_file: Path,
    seconds: float,
    connections: int = 64,
    rate: float | None = None,
    fixed: bool = False,
) -> Closed:
    """wrk for `seconds`: a closed loop, or paced to `rate` requests/s (see post.lua). `fixed`: requests
    built once and replayed (the same message ids again: only for rows without a worker)."""
    argv = ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--timeout", "10s", "-s", str(LUA), url, "--", str(keys_file), str(bodies_file), uuid.uuid4().hex]
    env = {**os.environ, "EP_WRK_FIXED": "1" if fixed else "0"}
    if rate:
        env["EP_WRK_RATE"] = str(rate)
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    data = orjson.loads(line.removeprefix("WRK_JSON "))
    errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
    return Closed(data["requests"], data["duration_us"] / 1e6, errors, data["p50"] / 1e3, data["p99"] / 1e3)


def h2load_argv(url: str, body_file: Path, key: str, rate: float, seconds: float, log: Path) -> tuple[list[str], float]:
    """The h2load command for `rate` requests/s, and the rate it will actually offer (whole rps per connection)."""
    connections = max(1, math.ceil(rate / PER_CONNECTION_RPS))
    per_connection = max(1, round(rate / connections))
    # Connections start a few per millisecond across one request interval, so that their requests are
    # spread evenly in time. Started together (h2load's -D mode), all connections fire in the same
    # instant every interval: a no-op app measured p50 5.8 ms / p99 13 ms that way at 2,700 req/s, and
    # 0.6 ms / 4.6 ms with the starts spread. (h2load's -r excludes -D: the run is a request count, and
    # `_read_logs` drops the first second as warm-up.)
    interval_ms = max(1, 1000 // per_connection)
    requests = connections * per_connection * max(1, round(seconds + WARM_UP_SECONDS))
    argv = [
        "taskset", "-c", str(LOAD_CORE), "h2load", "--h1", "-t1", f"-c{connections}", f"--rps={per_connection}",
        f"-n{requests}", f"-r{math.ceil(connections / interval_ms)}", "--rate-period=1ms", "-d", str(body_file),
        "-H", "Content-Type: application/json", "-H", f"X-API-Key: {key}", f"--log-file={log}", url,
    ]  # fmt: skip
    return argv, float(connections * per_connection)


def constant(url: str, senders: list[tuple[bytes, str]], rate: float, seconds: float) -> Constant:
    """Send at `rate` requests/s in total for `seconds` (after a 1 s warm-up), split over one h2load per
    (body, key) sender, and read every request's latency from their logs."""
    with tempfile.TemporaryDirectory(prefix="ep-h2load-") as tmp:
        runs: list[tuple[subprocess.Popen[bytes], Path, float]] = []
        try:
            for i, (body, key) in enumerate(senders):
                body_file, log = Path(tmp, f"body{i}.json"), Path(tmp, f"requests{i}.tsv")
                body_file.write_bytes(body)
                argv, offered = h2load_argv(url, body_file, key, rate / len(senders), seconds, log)
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                runs.append((proc, log, offered))
            for proc, _, _ in runs:
                if proc.wait(timeout=seconds + 60) != 0:
                    raise RuntimeError(f"h2load exited with {proc.returncode}")
        finally:
            for proc, _, _ in runs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return _read_logs([log for _, log, _ in runs], offered=sum(offered for _, _, offered in runs))


def _read_logs(logs: list[Path], offered: float) -> Constant:
    starts: list[int] = []
    elapsed: list[int] = []
    failed = 0
    records = [line.split("\t") for log in logs for line in log.read_text().splitlines()]
    first = min((int(r[0]) for r in records), default=0)
    for start, status, micros in records:
        if int(start) < first + WARM_UP_SECONDS * 1_000_000:
            continue  # warm-up
        starts.append(int(start))
        elapsed.append(int(micros))
        failed += not 200 <= int(status) < 300
    if not elapsed:
        raise RuntimeError("h2load logged no requests")
    elapsed.sort()
    span = max(1, max(starts) - min(starts)) / 1e6

    def pct(q: float) -> float:
        return elapsed[min(len(elapsed) - 1, int(q * len(elapsed)))] / 1e3

    return Constant(offered, len(elapsed) / span, len(elapsed), failed, pct(0.5), pct(0.99), pct(0.999), pct(1.0))
