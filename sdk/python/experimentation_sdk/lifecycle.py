"""Process events every live client must see: interpreter exit (flush, bounded) and fork."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experimentation_sdk.core import Core

_cores: weakref.WeakSet[Core] = weakref.WeakSet()
_lock = threading.Lock()
_forking: list[Core] = []


def register(core: Core) -> None:
    with _lock:
        _cores.add(core)


def unregister(core: Core) -> None:
    with _lock:
        _cores.discard(core)


def _live() -> list[Core]:
    with _lock:
        return list(_cores)


def _at_exit() -> None:
    for core in _live():
        if core.options.flush_at_exit:
            core.close(core.options.shutdown_timeout)


def _before_fork() -> None:
    """Hold every client's locks across fork, so the child never inherits one held mid-update."""
    _lock.acquire()
    _forking[:] = list(_cores)
    for core in _forking:
        core.before_fork()


def _after_fork_parent() -> None:
    for core in _forking:
        core.after_fork_parent()
    _forking.clear()
    _lock.release()


def _after_fork_child() -> None:
    global _lock
    _lock = threading.Lock()
    for core in _forking:
        core.after_fork_child()
    _forking.clear()


atexit.register(_at_exit)
os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)
