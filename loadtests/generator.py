"""The load generator's own ceiling, measured in the run: wrk against `responder.c`, an HTTP responder
far cheaper than any server the bench measures, pinned to the server core as they are.

Each closed-loop row is driven in one of two modes (`loadgen.wrk(fixed=...)`): `fixed` replays requests
built once (no worker behind the row, so repeated message ids cost nothing), `lua` builds a new body per
request (post.lua gives every event a fresh message id, which rows with a worker need). The ceiling of
the row's mode, over the row's own rate, is its generator headroom; below HEADROOM the row's figure is
the generator's, and the table says so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "responder.c"
HEADROOM = 1.5  # the generator must be able to send this many times the rate a row measures


def build(work_dir: Path) -> Path:
    """Compile responder.c with the system's C compiler (gcc or cc) into `work_dir`."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("the generator reference needs a C compiler (apt-get install -y gcc)")
    out = work_dir / "responder"
    subprocess.run([cc, "-O2", "-o", str(out), str(SOURCE)], check=True, capture_output=True)
    return out


def note(row_rate: float | None, ceiling: float | None, mode: str) -> str:
    """The table's note on a row's generator: its headroom, or that the row is generator-bound."""
    if not row_rate or not ceiling:
        return ""
    headroom = ceiling / row_rate
    verdict = "ok" if headroom >= HEADROOM else "GENERATOR-BOUND"
    return f"generator ({mode}) {headroom:.1f}x headroom: {verdict}"
