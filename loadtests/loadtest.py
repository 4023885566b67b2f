"""`make loadtest`: both locust users against a local stack started for the run, for a bounded time.

Starts Postgres and Valkey (embedded, or DATABASE_URL / REDIS_URL), the edge, the management API and a
worker on loopback; provisions workspaces and keys; runs locust headless; stops everything. Exits with
locust's status: non-zero when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson

from loadtests.provision import provision
from loadtests.stack import Procs, free_port, install_signal_handlers, python, servers_for_run, wait_http

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def run(users: int, seconds: int, workspaces: int) -> int:
    with servers_for_run() as env, Procs(env.work_dir / "logs") as procs:
        tenants = env.work_dir / "tenants.json"
        made = asyncio.run(provision(env.database_url, workspaces, 2))
        tenants.write_bytes(orjson.dumps({"workspaces": made}))
        ingest, api = free_port(), free_port()
        # Every simulated dashboard user signs up from 127.0.0.1: the per-address sign-up limit would stop them.
        stack_env = env.process_env(EVENTPLANE_INGEST_PORT=str(ingest), EVENTPLANE_API_PORT=str(api),
                                    EVENTPLANE_SIGNUP_LIMIT_PER_IP="1000000")  # fmt: skip
        servers = {"ingest": ingest, "api": api}
        for name, port in servers.items():
            proc = procs.start(name, [*python(), "eventplane.cli", name], stack_env, core=None)
            wait_http(port, "/healthz", proc=proc)
        procs.start("worker", [*python(), "eventplane.cli", "worker"], stack_env, core=None)
        locust_env = {
            **os.environ,
            "EVENTPLANE_LOAD_TENANTS": str(tenants),
            "EVENTPLANE_LOAD_INGEST_URL": f"http://127.0.0.1:{ingest}",
            "EVENTPLANE_LOAD_API_URL": f"http://127.0.0.1:{api}",
        }
        argv = [*python(), "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users)]
        argv += ["-t", f"{seconds}s", "--stop-timeout", "5", "--only-summary", "--exit-code-on-error", "1"]
        code = subprocess.run(argv, env=locust_env, timeout=seconds + 120, check=False).returncode
        if code != 0:
            for name in ("ingest", "api", "worker"):
                print(f"--- {name} log (tail)\n{procs.log_tail(name)}", file=sys.stderr)
        return code


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.loadtest", description=__doc__)
    p.add_argument("--users", type=int, default=25, help="concurrent users (4 SDK : 1 dashboard)")
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--workspaces", type=int, default=20)
    args = p.parse_args()
    install_signal_handlers()
    try:
        return run(args.users, args.seconds, args.workspaces)
    except KeyboardInterrupt:
        print("interrupted; every process the load test started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
