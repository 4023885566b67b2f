"""Random secrets made once and kept (mode 0600) in the data dir, for settings left unset."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from eventplane.settings import Secret


def stored_secret(path: Path) -> Secret:
    """The secret in `path`, made (atomically, 0600) the first time any process asks for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Secret(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return Secret(path.read_text().strip())
