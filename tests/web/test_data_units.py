"""The data pages' pure functions (tests/web/js/data_units.test.mjs) under Node's test runner: the page
modules are copied beside the test with a package.json of "type": "module" (they are plain ES modules
with a .js name, which Node reads as CommonJS without it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "api" / "web" / "static"
UNITS = Path(__file__).parent / "js" / "data_units.test.mjs"


def test_data_page_units(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("the data pages' unit tests need Node 18+ (apt-get install nodejs)")
    shutil.copytree(STATIC, tmp_path / "static")
    (tmp_path / "package.json").write_text(json.dumps({"type": "module"}))
    shutil.copy(UNITS, tmp_path / UNITS.name)
    run = subprocess.run([node, "--test", UNITS.name], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
