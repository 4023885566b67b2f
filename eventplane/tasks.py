"""Stopping background tasks within a deadline, even when one swallows its cancellation.

A cancel can be lost: on Python 3.11, `asyncio.wait_for` returns the inner result instead of raising
CancelledError when the cancel lands just as the inner awaitable finishes (CPython gh-86296, fixed in
3.12), and redis-py 5 wraps every socket write in it (`socket_timeout` set). A `while True` loop around
a Redis call then survives `task.cancel()` about one time in three, and a plain `gather` of the
cancelled tasks waits forever.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable

RECANCEL_SECONDS = 0.2  # how long a cancelled task gets before it is cancelled again


async def stop(tasks: Iterable[asyncio.Task[None]], within: float, log: logging.Logger) -> list[asyncio.Task[None]]:
    """Cancel `tasks` and wait at most `within` seconds for them to end, cancelling again those still
    running every RECANCEL_SECONDS. Returns (and logs, with their stacks) the ones that did not end."""
    tasks = list(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pending = {task for task in tasks if not task.done()}
    while pending and (left := deadline - loop.time()) > 0:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_SECONDS, left))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())
    for task in pending:
        stack = io.StringIO()
        task.print_stack(file=stack)
        log.error(
            "background task %s did not stop within %.1f s; abandoned",
            task.get_name(),
            within,
            extra={"stack": stack.getvalue()},
        )
    return sorted(pending, key=lambda t: t.get_name())
