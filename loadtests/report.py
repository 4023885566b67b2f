"""The bench's outputs: one table on stdout, a JSON file and a PNG chart, all from the same figures."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

# A target: pass or fail, given the figure and its ratio to the reference.
Check = Callable[[float, float | None], bool]


@dataclass(frozen=True)
class Line:
    row: str
    value: float | None
    unit: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


def line(
    figures: dict[str, float | None],
    row: str,
    unit: str,
    reference: str = "",
    target: str = "",
    check: Check | None = None,
    note: str = "",
    key: str = "",
) -> Line:
    """A table line for figure `key` (default: `row`), with its ratio to `reference` and target check."""
    value = figures.get(key or row)
    base = figures.get(reference) if reference else None
    ratio = value / base if value is not None and base else None
    passed = check(value, ratio) if check is not None and value is not None else None
    return Line(row, value, unit, reference, ratio, target, passed, note)


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def table(lines: list[Line]) -> str:
    head = ("row", "figure", "unit", "vs", "ratio", "target", "pass", "note")
    cells = [
        (
            x.row,
            _num(x.value),
            x.unit,
            x.reference,
            "" if x.ratio is None else f"{x.ratio:.2f}x",
            x.target,
            {True: "PASS", False: "FAIL", None: ""}[x.passed],
            x.note,
        )
        for x in lines
    ]
    widths = [max(len(str(r[i])) for r in [head, *cells]) for i in range(len(head))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in (1, 4) else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *(fmt(r) for r in cells)])


def markdown(lines: list[dict[str, Any]]) -> str:
    """The table of a results JSON (its "table" entries) as Markdown, for README's Performance section."""
    out = ["| row | figure | unit | vs | ratio | target | pass | note |", "|---|---:|---|---|---:|---|---|---|"]
    for x in lines:
        ratio = "" if x["ratio"] is None else f"{x['ratio']:.2f}x"
        verdict = {True: "PASS", False: "**FAIL**", None: ""}[x["passed"]]
        cells = (x["row"], _num(x["value"]), x["unit"], x["reference"], ratio, x["target"], verdict, x["note"])
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(out)


def main() -> None:
    """`python -m loadtests.report RESULTS.json`: print that run's table as Markdown."""
    import sys

    doc = orjson.loads(Path(sys.argv[1]).read_bytes())
    print(markdown(doc["table"]))


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_end": os.getloadavg(),  # other work on the machine during the run shows here
    }


def write_json(path: Path, lines: list[Line], meta: dict[str, Any], raw: dict[str, Any]) -> None:
    doc = {**meta, "git": git_state(), "machine": machine(), "table": [asdict(x) for x in lines], "raw": raw}
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


def timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


THROUGHPUT = ("generator_fixed", "noop", "edge_single", "edge_batch", "naive", "copy_ceiling", "pipeline", "preloaded")
COLORS = dict(
    zip(
        THROUGHPUT,
        ("#cccccc", "#999999", "#1f77b4", "#1f77b4", "#d62728", "#999999", "#2ca02c", "#98df8a"),
        strict=True,
    )
)
LATENCY = (("latency_p50", "p50"), ("latency_p99", "p99"), ("latency_p999", "p99.9"))
LAG = (("lag_p50", "p50"), ("lag_p99", "p99"))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def chart(path: Path, figures: dict[str, float | None], units: dict[str, str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    names = [n for n in THROUGHPUT if figures.get(n) is not None]
    values = [float(figures[n] or 0) for n in names]
    bars = left.barh(names, values, color=[COLORS[n] for n in names])
    left.set_xscale("log")
    left.invert_yaxis()
    left.set_title("throughput (log scale)")
    for bar, name, value in zip(bars, names, values, strict=True):
        left.text(value, bar.get_y() + bar.get_height() / 2, f" {value:,.0f} {units.get(name, '')}", va="center")
    left.set_xlim(right=max(values or [1]) * 20)
    bars_at: list[tuple[str, float | None, str]] = [
        *((f"edge {pct}", figures.get(key), "#1f77b4") for key, pct in LATENCY),
        *((f"lag {pct}", _ms(figures.get(key)), "#2ca02c") for key, pct in LAG),
    ]
    for x, (_, ms, color) in enumerate(bars_at):
        if ms is not None:
            right.bar(x, ms, color=color)
            right.text(x, ms, f"{ms:,.1f}", ha="center", va="bottom", fontsize=8)
    right.set_xticks(range(len(bars_at)), [label for label, _, _ in bars_at], fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("milliseconds (log scale)")
    right.set_xlabel("edge: constant rate at half its peak; lag: received_at to commit")
    right.set_title("latency percentiles")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
