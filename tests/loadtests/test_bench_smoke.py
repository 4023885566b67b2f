"""The bench harness end to end in its smoke mode, so that it cannot rot: every row produces a figure,
and the JSON and PNG are written. Nothing here asserts a speed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from loadtests import loadgen

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tools() -> None:
    if all(shutil.which(tool) for tool in loadgen.PACKAGES):
        return
    if os.geteuid() != 0:
        pytest.skip("wrk and h2load are missing (apt-get install wrk nghttp2-client)")
    loadgen.ensure_tools()


def test_smoke_run_produces_every_figure_and_both_files(tools: None, tmp_path: Path) -> None:
    # Embedded servers of its own: the lag figure needs Postgres commit timestamps, which it turns on there.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    argv = [sys.executable, "-m", "loadtests.bench", "--smoke", "--out", str(tmp_path)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [json_path] = tmp_path.glob("*.json")
    assert json_path.with_suffix(".png").stat().st_size > 10_000
    doc = orjson.loads(json_path.read_bytes())
    assert doc["mode"] == "smoke"
    assert len(doc["git"]["commit"]) == 40
    missing = [line["row"] for line in doc["table"] if line["value"] is None]
    assert missing == []
    rows = {line["row"] for line in doc["table"]}
    assert {"noop", "edge_single", "edge_batch", "evaluate", "pipeline", "copy_ceiling", "naive", "latency_p99"} <= rows
    assert {"lag_p99", "edge_rss_mb", "worker_rss_mb"} <= rows
    generators = {"generator_fixed", "generator_lua", "generator_batch", "generator_batch_lua", "noop_lua"}
    assert generators <= rows
    assert {"preload_seconds", "preloaded_saturated", "preloaded", "preloaded_lag_p99"} <= rows
    notes = {line["row"]: line["note"] for line in doc["table"]}
    assert "headroom" in notes["edge_single"] and "headroom" in notes["pipeline"]  # every row's generator checked
    assert "edge_single" in done.stdout  # the table was printed


def test_smoke_soak_writes_json_and_chart_with_every_check(tools: None, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    argv = [sys.executable, "-m", "loadtests.soak", "--seconds", "6", "--rate", "1000", "--out", str(tmp_path)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]  # 1: a check failed, still written

    [json_path] = tmp_path.glob("soak-*.json")
    assert json_path.with_suffix(".svg").read_text().startswith("<?xml")
    doc = orjson.loads(json_path.read_bytes())
    assert set(doc["checks"]) == {"edge_rss", "worker_rss", "depth", "errors", "stored", "lag"}
    assert len(doc["series"]["t"]) >= 3 and min(doc["series"]["edge_mb"]) > 0 and min(doc["series"]["worker_mb"]) > 0
    assert doc["lag_per_10s"] and doc["checks"]["stored"]["stored"] > 0
    assert doc["pass"] == (done.returncode == 0)
