"""Two instances on one machine (tests/instances/stack.py): each workspace's events are stored on its own
instance only; an instance whose Redis is down costs only its own workspaces (503, then everything
acknowledged is stored once); a workspace moved under load loses and doubles nothing."""

from __future__ import annotations

import asyncio
import signal
import time
from urllib.parse import urlsplit

import orjson

from eventplane import servers
from tests.instances.conftest import FIGURES
from tests.instances.stack import TwoInstances, load, stored, wait_stored


async def test_isolation_and_b_redis_down(two: TwoInstances) -> None:
    a_id, _, a_key = await two.tenant("a")
    b_id, _, b_key = await two.tenant("b")
    listed = two.run_cli("instance", "list")
    assert listed.returncode == 0, listed.stderr.decode()
    loads = {i["name"]: i["workspaces"] for i in orjson.loads(listed.stdout)}
    assert loads == {"default": 0, "a": 1, "b": 1}
    password = urlsplit(two.urls["b"][1]).password
    assert password and password.encode() not in listed.stdout  # URLs are shown redacted
    stop = asyncio.Event()
    sending_a = asyncio.create_task(load(two.edge_ports, a_key, stop))
    sending_b = asyncio.create_task(load(two.edge_ports, b_key, stop))
    await asyncio.sleep(2)
    servers.stop_valkey(two.valkey_dir(2))  # b's queue: SIGTERM, Valkey writes its AOF and exits
    down_at = time.monotonic()
    await asyncio.sleep(5)
    up_at = time.monotonic()
    servers.ensure_valkey(two.valkey_dir(2))  # same port, password and AOF: b's queued jobs are back
    await asyncio.sleep(3)
    stop.set()
    a, b = await sending_a, await sending_b

    # During the outage (from a second after the stop: requests in flight then may still pass), b's
    # tenants got 503 and nothing else, a's got 202.
    a_during, b_during = a.between(down_at + 1, up_at), b.between(down_at + 1, up_at)
    assert a_during[202] > 0 and set(a_during) == {202}, (a_during, two.logs())
    assert b_during[503] > 0 and b_during[202] == 0, (b_during, two.logs())
    assert set(a.statuses) <= {202, 503, 0} and set(b.statuses) <= {202, 503, 0}

    a_db = two.urls["a"][0]
    b_db = two.urls["b"][0]
    a_rows, a_ids = await wait_stored(a_db, a_id, a.acked)
    b_rows, b_ids = await wait_stored(b_db, b_id, b.acked)
    FIGURES.append(f"b's Redis down 5 s: a acked={len(a.acked)} stored={a_rows} (202 during: {a_during[202]}); "
                   f"b acked={len(b.acked)} stored={b_rows} (503 during: {b_during[503]})")  # fmt: skip
    assert (a_rows, a_ids) == (len(a.acked), a.acked), two.logs()  # every acknowledged event, once
    assert (b_rows, b_ids) == (len(b.acked), b.acked), two.logs()
    assert await stored(b_db, a_id) == (0, set())  # nothing crosses instances
    assert await stored(a_db, b_id) == (0, set())
    assert await stored(two.hub_db, a_id) == (0, set()) and await stored(two.hub_db, b_id) == (0, set())


async def test_move_under_load_killed_stopped_and_resumed(two: TwoInstances) -> None:
    """The move is killed (SIGKILL) during its fence, resumed up to the copy, then resumed to the end."""
    moved_id, slug, key = await two.tenant("a")
    stop = asyncio.Event()
    sending = asyncio.create_task(load(two.edge_ports, key, stop, senders=3))
    await asyncio.sleep(2)
    killed = two.spawn("move", "workspace", "move", slug, "--to", "b")
    await two.wait_step(moved_id, "routed")  # edges now queue on b, which holds; the move waits out its fence
    killed.send_signal(signal.SIGKILL)
    await asyncio.to_thread(killed.wait, 10)
    first = await asyncio.to_thread(two.run_cli, "workspace", "move", slug, "--to", "b", "--stop-after", "copied")
    assert first.returncode == 0, first.stderr.decode()
    assert b"copied" in first.stdout  # stopped with the history on both instances and b holding
    await asyncio.sleep(1)
    second = await asyncio.to_thread(two.run_cli, "workspace", "move", slug, "--to", "b")
    assert second.returncode == 0, second.stderr.decode()
    await asyncio.sleep(2)  # events keep arriving, now to b and stored at once
    stop.set()
    seen = await sending

    a_db, b_db = two.urls["a"][0], two.urls["b"][0]
    rows, ids = await wait_stored(b_db, moved_id, seen.acked)
    FIGURES.append(f"move a -> b under load: acked={len(seen.acked)} stored on b={rows} statuses={dict(seen.statuses)}")
    assert set(seen.statuses) <= {202, 503, 0}, seen.statuses
    assert (rows, ids) == (len(seen.acked), seen.acked), two.logs()  # nothing lost, nothing doubled
    assert await stored(a_db, moved_id) == (0, set())  # the source's copy is gone
