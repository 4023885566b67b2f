"""Peak resident memory of named processes, sampled every 200 ms in a background thread."""

from __future__ import annotations

import threading

import psutil

INTERVAL = 0.2


class PeakRss:
    def __init__(self) -> None:
        self.peak_mb: dict[str, float] = {}
        self._watched: dict[int, tuple[str, psutil.Process]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, name: str, pid: int) -> None:
        """Follow `pid` (and its children) under `name`; several processes may share a name."""
        self._watched[pid] = (name, psutil.Process(pid))

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            for pid, (name, proc) in list(self._watched.items()):
                try:
                    rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
                except psutil.Error:
                    self._watched.pop(pid, None)
                    continue
                self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss / 2**20)
