"""Where the edge spends its time: py-spy samples of the running edge under edge_single and edge_batch
load (runs after the measured rows, because sampling slows the process it samples).

Writes DIR/edge_single.folded and DIR/edge_batch.folded (collapsed stacks, for flamegraph tools) and
returns the top functions by self time (the innermost frame of each sample).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtests import loadgen

if TYPE_CHECKING:
    from loadtests.bench import Files

TOP = 15
_LINE = re.compile(r":\d+\)$")  # "f (path.py:12)" -> "f (path.py)": one entry per function, not per line


def top_self(folded: Path, top: int = TOP) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        counts[_LINE.sub(")", stack.rsplit(";", 1)[-1])] += int(n)
    total = sum(counts.values()) or 1
    return [{"function": f, "samples": n, "share": round(n / total, 4)} for f, n in counts.most_common(top)]


def record(pid: int, seconds: float, out: Path) -> None:
    beside = Path(sys.executable).parent / "py-spy"  # installed into the venv, which may not be on PATH
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    argv = [spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", "200", "-f", "raw", "-o", str(out)]
    subprocess.run(argv, check=True, capture_output=True)


def edge(pid: int, port: int, files: Files, seconds: float, out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = {}
    for name, path, bodies in (
        ("edge_single", "/api/v1/tracking/track", files.single),
        ("edge_batch", "/api/v1/tracking/batch", files.batch),
    ):
        folded = out_dir / f"{name}.folded"
        url = f"http://127.0.0.1:{port}{path}"
        with ThreadPoolExecutor(1) as pool:
            load = pool.submit(loadgen.wrk, url, files.keys, bodies, seconds + 2)
            record(pid, seconds, folded)
            load.result()
        found[name] = top_self(folded)
        print(f"  profile {name}: " + "; ".join(f"{t['function']} {t['share']:.0%}" for t in found[name][:5]))
    return found
