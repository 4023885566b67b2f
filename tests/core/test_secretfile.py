from __future__ import annotations

import stat
from pathlib import Path

from eventplane.secretfile import stored_secret


def test_a_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "jwt_secret"
    first = stored_secret(path)
    assert len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored_secret(path) == first
    assert stored_secret(tmp_path / "other") != first
