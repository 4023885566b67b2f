"""The workspace's flag and experiment definitions as the SDK holds them: the latest config document
(`GET /api/v1/sdk/config`), indexed by key, swapped whole and never edited in place, so a reader needs
no lock (one attribute read of an immutable snapshot)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    version: int
    etag: str | None
    flags: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    experiments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def parse(body: bytes | str, etag: str | None = None) -> Snapshot:
    """The document as a snapshot; ValueError when it is not one."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("version"), int):
        raise ValueError("not a config document (no integer 'version')")
    flags = {f["key"]: f for f in doc.get("flags") or () if isinstance(f, dict) and isinstance(f.get("key"), str)}
    experiments = {
        e["key"]: e for e in doc.get("experiments") or () if isinstance(e, dict) and isinstance(e.get("key"), str)
    }
    if etag is None and "workspace_id" in doc:
        etag = f'"{doc["workspace_id"]}:{doc["version"]}"'  # the edge's ETag, for a document from the stream
    return Snapshot(doc["version"], etag, flags, experiments)


class ConfigStore:
    """Holds the current snapshot; `wait` lets a caller (or a test) wait for the first one."""

    def __init__(self) -> None:
        self.current: Snapshot | None = None
        self._changed = threading.Condition()

    def offer(self, snapshot: Snapshot) -> bool:
        """Take the snapshot unless an equal or newer version is held (the stream and a poll may race)."""
        with self._changed:
            held = self.current
            if held is not None and held.version >= snapshot.version:
                return False
            self.current = snapshot
            self._changed.notify_all()
            return True

    def wait(self, timeout: float, newer_than: int = -1) -> bool:
        """Whether a snapshot of a version above `newer_than` arrived within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self.current is not None and self.current.version > newer_than, timeout
            )
