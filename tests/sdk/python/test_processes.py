"""Real processes: one that exits right after track, one that forks. What each process tracked is
sent by that process, once, and stored once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections import Counter

import asyncpg

from eventplane.settings import Settings
from tests.conftest import Tenant, drain
from tests.sdk.python.conftest import stored
from tests.sdk.python.faults import fault_proxy

EXITS_AT_ONCE = """
import sys
from experimentation_sdk import ExperimentationClient

client = ExperimentationClient(base_url=sys.argv[1])  # the key comes from EXPERIMENTATION_API_KEY
for message_id in sys.argv[2:]:
    client.track("exit", user_id="u1", message_id=message_id)
"""

FORKS = """
import os, sys
from experimentation_sdk import ExperimentationClient

client = ExperimentationClient(base_url=sys.argv[1], flush_interval=30)
client.track("parent", user_id="u1", message_id="p-1")  # still queued when the process forks
pid = os.fork()
if pid == 0:
    client.track("child", user_id="u1", message_id="c-1")
    assert client.flush(10), "the child's sender delivers"
    assert client.stats().sent == 1, client.stats()
    client.track("child", user_id="u1", message_id="c-2")  # left for the child's exit flush
    sys.exit(0)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
client.track("parent", user_id="u1", message_id="p-2")
"""


async def run(script: str, *args: str, key: str) -> None:
    """Run `script` in a new session; on a deadline, kill it and its children (a forked child too)."""
    env = {**os.environ, "EXPERIMENTATION_API_KEY": key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(script), *args, env=env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = await proc.communicate()
        raise AssertionError(f"the script did not finish within 30 s:\n{out.decode()}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a child left behind
    assert proc.returncode == 0, out.decode()


async def test_a_process_that_exits_right_after_track_has_its_events_stored(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    ids = [f"exit-{i}" for i in range(3)]
    await run(EXITS_AT_ONCE, edge_url, *ids, key=tenant.key)
    await drain(settings)
    assert sorted(await stored(pool, tenant.workspace_id)) == ids


async def test_after_fork_each_process_sends_only_its_own_events(
    edge_url: str, tenant: Tenant, pool: asyncpg.Pool, settings: Settings
) -> None:
    async with fault_proxy(edge_url) as proxy:
        await run(FORKS, proxy.url, key=tenant.key)
    # Each id crossed the wire once: the child never sent the parent's queued p-1.
    assert Counter(proxy.sent_ids()) == {"p-1": 1, "p-2": 1, "c-1": 1, "c-2": 1}
    await drain(settings)
    rows = await stored(pool, tenant.workspace_id)
    assert {m: r["event_type"] for m, r in rows.items()} == {
        "p-1": "parent", "p-2": "parent", "c-1": "child", "c-2": "child",
    }  # fmt: skip
