"""Batches that could not be delivered by close or exit, kept on disk for the next client.

One file per batch, written atomically (temporary file, fsync, rename), so a crash leaves either the
whole file or none. A file holds its events as sent (same message ids) and the drop report it carries
(same report id), so sending it twice — two clients sharing the directory, a lost answer — stores and
counts it once. It is deleted only after a 2xx. Files of another API key are left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from experimentation_sdk.accounting import Report
from experimentation_sdk.batch import Batch
from experimentation_sdk.events import Encoded

log = logging.getLogger("experimentation_sdk")
SUFFIX = ".batch.json"
REJECTED = ".rejected"


def fingerprint(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]  # tells keys apart; reveals nothing usable


class Spool:
    def __init__(self, directory: Path, api_key: str) -> None:
        self.directory = directory
        self._key = fingerprint(api_key)

    def write(self, batch: Batch) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        doc = {
            "version": 1,
            "key": self._key,
            "client_report": batch.report.wire() if batch.report else None,
            "events": [json.loads(e.data) for e in batch.events],
        }
        name = f"{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.directory / name

    def pending(self) -> Iterator[tuple[Path, Batch]]:
        """The directory's files of this key, oldest first, each as the batch it holds."""
        if not self.directory.is_dir():
            return
        paths = sorted(self.directory.glob(f"*{SUFFIX}"), key=_mtime)
        for path in paths:
            batch = self._read(path)
            if batch is not None:
                yield path, batch

    def delivered(self, path: Path) -> None:
        path.unlink(missing_ok=True)  # another client may have sent and deleted it too

    def rejected(self, path: Path) -> None:
        """Refused for good (a 4xx): kept for a person to look at, never sent again."""
        with contextlib.suppress(FileNotFoundError):
            path.rename(path.with_name(path.name + REJECTED))

    def _read(self, path: Path) -> Batch | None:
        try:
            doc = json.loads(path.read_bytes())
            if doc.get("key") != self._key:
                return None
            events = [
                Encoded(str(e["message_id"]), json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode())
                for e in doc["events"]
            ]
            wire = doc.get("client_report")
            report = Report(str(wire["id"]), {str(k): int(v) for k, v in wire["dropped"].items()}) if wire else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("experimentation_sdk: unreadable spool file %s left in place: %s", path, exc)
            return None
        return Batch(events, report)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
