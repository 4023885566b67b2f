"""Workspaces and write keys for a load run: `python -m loadtests.provision OUT.json [--workspaces N]`.

Uses DATABASE_URL (a migrated database). The JSON file lists, per workspace, its id, slug and keys; the
locustfile and the bench read it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from eventplane import tenants


async def provision(dsn: str, workspaces: int, keys_per_workspace: int) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:6]
    conn = await asyncpg.connect(dsn)
    out: list[dict[str, Any]] = []
    try:
        for i in range(workspaces):
            slug = f"load-{run}-{i}"
            ws = await tenants.create_workspace(conn, name=f"Load {run} {i}", slug=slug, plan="pro")
            keys = []
            for k in range(keys_per_workspace):
                _, plaintext = await tenants.create_api_key(
                    conn, workspace_id=ws["id"], name=f"load-{k}", scope_names=["write"]
                )
                keys.append(plaintext)
            out.append({"id": ws["id"], "slug": slug, "keys": keys})
    finally:
        await conn.close()
    return out


def all_keys(workspaces: list[dict[str, Any]]) -> list[str]:
    return [key for ws in workspaces for key in ws["keys"]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--workspaces", type=int, default=20)
    p.add_argument("--keys-per-workspace", type=int, default=2)
    args = p.parse_args()
    dsn = os.environ["DATABASE_URL"]
    made = asyncio.run(provision(dsn, args.workspaces, args.keys_per_workspace))
    args.out.write_bytes(orjson.dumps({"workspaces": made}, option=orjson.OPT_INDENT_2))
    print(f"provisioned {len(made)} workspaces, {len(all_keys(made))} keys -> {args.out}")


if __name__ == "__main__":
    main()
