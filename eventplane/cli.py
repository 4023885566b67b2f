"""The `eventplane` command: run the stack, migrate, and bootstrap workspaces and keys."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import email.policy
import os
import sys
from collections.abc import Callable, Coroutine
from email.message import EmailMessage
from typing import Any

import asyncpg
import orjson

from eventplane import apikeys, db, instance_config, instances, mail, plans, scopes, servers, tenants
from eventplane.redis_client import connect_redis
from eventplane.settings import Settings


def _resolved(args: argparse.Namespace) -> Settings:
    resolved = servers.resolve(Settings.from_env())
    for name in resolved.started:
        print(f"started embedded {name} under {resolved.settings.data_dir} "
              "(stop it with `eventplane servers stop`)", file=sys.stderr)  # fmt: skip
    return resolved.settings


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


# Commands ------------------------------------------------------------------------------------------
def cmd_env(args: argparse.Namespace) -> int:
    settings = _resolved(args)
    print(f"DATABASE_URL={settings.database_url}")
    print(f"REDIS_URL={settings.redis_url}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _resolved(args)
    created = asyncio.run(db.migrate(settings.dsn))
    upgraded = asyncio.run(instance_config.upgrade(settings))  # registered instances' databases too
    print(f"schema up to date; {created} new event partitions; instances upgraded: {', '.join(upgraded) or 'none'}")
    return 0


async def _workspace_create(settings: Settings, args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(settings.dsn)
    try:
        workspace = await tenants.create_workspace(
            conn, name=args.name, slug=args.slug, plan=args.plan, instance=args.instance
        )
    except instances.PlacementError as exc:
        return _fail(exc.message)
    except asyncpg.UniqueViolationError:
        return _fail(f"a workspace with slug '{args.slug}' exists already")
    except asyncpg.CheckViolationError:
        return _fail("name must be 1-100 characters; slug 1-50 of a-z, 0-9 and '-'")
    finally:
        await conn.close()
    _print_json(workspace)
    return 0


async def _workspace_set_plan(settings: Settings, args: argparse.Namespace) -> int:
    pool = await db.create_pool(settings.dsn, min_size=1, max_size=2)
    redis = connect_redis(settings.redis_dsn)
    try:
        workspace = await tenants.set_plan(pool, redis, apikeys.redis_keys(settings), args.slug, args.plan)
    finally:
        await db.close_pool(pool)
        await redis.aclose()
    if workspace is None:
        return _fail(f"no workspace with slug '{args.slug}'")
    _print_json(workspace)
    return 0


async def _instance_add(settings: Settings, args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(settings.dsn)
    try:
        instance = await instances.add(conn, args.name, args.database_url, args.redis_url)
    except ValueError as exc:
        return _fail(str(exc))
    except asyncpg.UniqueViolationError:
        return _fail(f"an instance named '{args.name}' exists already")
    except (OSError, asyncpg.PostgresError) as exc:  # never print the URLs: they hold passwords
        return _fail(f"cannot reach the instance's servers ({type(exc).__name__}); nothing registered")
    finally:
        await conn.close()
    _print_json({"name": instance.name, "database_url": instances.redact(instance.database_url),
                 "redis_url": instances.redact(instance.redis_url), "state": instance.state})  # fmt: skip
    return 0


async def _instance_list(settings: Settings, args: argparse.Namespace) -> int:
    """Every instance with its load: workspaces placed on it and events queued in its Redis."""
    from eventplane import queue
    from eventplane.redis_names import RedisNames

    conn = await asyncpg.connect(settings.dsn)
    try:
        listed = await instances.load(conn)
        found = await instances.registry(conn)
    finally:
        await conn.close()
    for item in listed:
        target = found.get(item["name"]) or instances.of_hub(settings)
        redis = connect_redis(target.redis_url)
        try:
            item["queued_events"], _ = await queue.depth(redis, RedisNames(settings.redis_prefix))
        except Exception as exc:
            item["queued_events"] = f"unreachable ({type(exc).__name__})"
        finally:
            await redis.aclose()
    _print_json(listed)
    return 0


async def _instance_state(settings: Settings, args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(settings.dsn)
    try:
        found = await instances.set_state(conn, args.name, args.state)
    finally:
        await conn.close()
    if not found:
        return _fail(f"no instance named '{args.name}'")
    _print_json({"name": args.name, "state": args.state})
    return 0


async def _workspace_move(settings: Settings, args: argparse.Namespace) -> int:
    from eventplane import moves

    try:
        step = await moves.move(settings, args.slug, args.to, stop_after=args.stop_after,
                                say=lambda line: print(line, file=sys.stderr))  # fmt: skip
    except moves.MoveError as exc:
        return _fail(str(exc))
    _print_json({"slug": args.slug, "instance": args.to, "step": step})
    return 0


async def _key_create(settings: Settings, args: argparse.Namespace) -> int:
    names = [s for part in args.scopes for s in part.split(",") if s]
    conn = await asyncpg.connect(settings.dsn)
    try:
        workspace = await tenants.workspace_by_slug(conn, args.workspace)
        if workspace is None:
            return _fail(f"no workspace with slug '{args.workspace}'")
        expires = dt.datetime.fromisoformat(args.expires_at) if args.expires_at else None
        record, plaintext = await tenants.create_api_key(
            conn, workspace_id=workspace["id"], name=args.name, scope_names=names, expires_at=expires
        )
    except scopes.UnknownScope as exc:
        return _fail(f"unknown scope '{exc.name}'; use {sorted(scopes.SCOPES | set(scopes.BUNDLES))}")
    finally:
        await conn.close()
    _print_json({**record, "key": plaintext})
    return 0


async def _key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    pool = await db.create_pool(settings.dsn, min_size=1, max_size=2)
    redis = connect_redis(settings.redis_dsn)
    try:
        found = await tenants.revoke_api_key(pool, redis, apikeys.redis_keys(settings), args.key_id)
    finally:
        await db.close_pool(pool)
        await redis.aclose()
    if not found:
        return _fail(f"no API key with id {args.key_id}")
    _print_json({"id": args.key_id, "revoked": True})
    return 0


async def _events(settings: Settings, args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(settings.dsn)
    try:
        workspace = await tenants.workspace_by_slug(conn, args.workspace)
        if workspace is None:
            return _fail(f"no workspace with slug '{args.workspace}'")
        placed = await conn.fetchval("SELECT instance FROM workspaces WHERE id = $1", workspace["id"])
        instance = await instances.get(conn, settings, instances.label(placed))
        assert instance is not None, "workspaces.instance references instances"
        await conn.close()
        conn = await asyncpg.connect(instance.database_url)  # its events live on its instance
        rows = await conn.fetch(
            "SELECT message_id, event_type, user_id, anonymous_id, value, properties::text AS properties, "
            '"timestamp", received_at FROM events WHERE workspace_id = $1 ORDER BY received_at DESC LIMIT $2',
            workspace["id"],
            args.limit,
        )
    finally:
        await conn.close()
    for row in rows:
        record = dict(row)
        record["properties"] = orjson.loads(record["properties"])
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
    return 0


def cmd_mail(args: argparse.Namespace) -> int:
    """The latest messages of the file mailbox (without EVENTPLANE_SMTP_URL), oldest of them first."""
    settings = Settings.from_env()
    if settings.smtp_url is not None:
        return _fail("EVENTPLANE_SMTP_URL is set: mail goes to that server, not to the local mailbox")
    paths = mail.latest(settings, args.limit)
    if not paths:
        print(f"no mail in {settings.data_dir / 'mailbox'}", file=sys.stderr)
    for path in reversed(paths):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(("plain",))
        text = part.get_content() if part else ""
        head = {name: mail.header(message, name) for name in ("Message-ID", "Date", "To", "Subject")}
        print(f"----- {path.name}\n" + "".join(f"{k}: {v}\n" for k, v in head.items()) + f"\n{text}")
    return 0


def _async(
    fn: Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return asyncio.run(fn(_resolved(args), args))

    return run


# The processes live in their own packages (the core imports none of them): these commands become them.
PROCESSES = {"ingest": "ingest", "api": "api", "worker": "workers"}


def process_argv(command: str) -> list[str]:
    """How to start one process: `python -m <its package>` with this interpreter."""
    return [sys.executable, "-m", PROCESSES[command]]


def cmd_process(args: argparse.Namespace) -> int:
    argv = process_argv(args.command)
    if getattr(args, "instance", None):
        os.environ["EVENTPLANE_INSTANCE"] = args.instance  # read by Settings.from_env in the worker
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # same pid: signals from a supervisor (SIGTERM) reach the process itself


def cmd_dev(args: argparse.Namespace) -> int:
    from eventplane.dev import Supervisor

    resolved = servers.resolve(Settings.from_env())
    settings = resolved.settings
    try:
        asyncio.run(db.migrate(settings.dsn))
        asyncio.run(instance_config.upgrade(settings))
        env = {**os.environ, "DATABASE_URL": settings.dsn, "REDIS_URL": settings.redis_dsn}
        env.setdefault("EVENTPLANE_LOG_FORMAT", "text")  # people read these; set json to get JSON
        commands = {name: process_argv(name) for name in PROCESSES}
        for name in asyncio.run(_instance_names(settings)):  # one worker per registered instance
            commands[f"worker {name}"] = [sys.executable, "-m", "eventplane.cli", "worker", "--instance", name]
        print(f"EventPlane dev: ingest http://{settings.ingest_host}:{settings.ingest_port}  "
              f"api http://{settings.api_host}:{settings.api_port}  (Ctrl-C stops)", flush=True)  # fmt: skip
        asyncio.run(Supervisor(commands, env).run())
    finally:
        if resolved.started:
            servers.stop(settings.data_dir, resolved.started)
            print(f"stopped embedded {', '.join(resolved.started)}", flush=True)
    return 0


async def _instance_names(settings: Settings) -> list[str]:
    conn = await asyncpg.connect(settings.dsn)
    try:
        return list(await instances.registry(conn))
    finally:
        await conn.close()


def cmd_servers_stop(args: argparse.Namespace) -> int:
    servers.stop(Settings.from_env().data_dir)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eventplane", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run ingest, api and a worker (and embedded servers)").set_defaults(fn=cmd_dev)
    sub.add_parser("env", help="print DATABASE_URL and REDIS_URL in use").set_defaults(fn=cmd_env)
    sub.add_parser(
        "migrate", help="apply the missing migrations/NNNN_*.sql (schema.sql on an empty database)"
    ).set_defaults(fn=cmd_migrate)
    sub.add_parser("ingest", help="run the edge (EVENTPLANE_INGEST_PORT)").set_defaults(fn=cmd_process)
    sub.add_parser("api", help="run the management API (EVENTPLANE_API_PORT)").set_defaults(fn=cmd_process)
    wk = sub.add_parser("worker", help="run one worker process")
    wk.add_argument("--instance", help="the instance it serves (default: the hub's own servers)")
    wk.set_defaults(fn=cmd_process)

    ins = sub.add_parser("instance", help="instances: Postgres + Redis pairs holding workspaces' events")
    ia = ins.add_subparsers(dest="action", required=True)
    iadd = ia.add_parser("add", help="register an instance (migrates its database); prints JSON")
    iadd.add_argument("name")
    iadd.add_argument("--database-url", required=True)
    iadd.add_argument("--redis-url", required=True)
    iadd.set_defaults(fn=_async(_instance_add))
    ia.add_parser("list", help="instances with their workspaces and queued events").set_defaults(
        fn=_async(_instance_list)
    )
    idr = ia.add_parser("drain", help="place no new workspaces on an instance")
    idr.add_argument("name")
    idr.set_defaults(fn=_async(_instance_state), state="draining")
    iac = ia.add_parser("activate", help="place new workspaces on a drained instance again")
    iac.add_argument("name")
    iac.set_defaults(fn=_async(_instance_state), state="active")

    srv = sub.add_parser("servers", help="embedded servers").add_subparsers(dest="action", required=True)
    srv.add_parser("stop", help="stop the embedded Postgres and Valkey").set_defaults(fn=cmd_servers_stop)

    ws = sub.add_parser("workspace", help="workspaces").add_subparsers(dest="action", required=True)
    wc = ws.add_parser("create", help="create a workspace; prints JSON")
    wc.add_argument("--name", required=True)
    wc.add_argument("--slug", required=True)
    wc.add_argument("--plan", default="free", choices=["free", "pro", "enterprise"])
    wc.add_argument("--instance", help="where its events live (default: the least loaded instance)")
    wc.set_defaults(fn=_async(_workspace_create))
    wm = ws.add_parser("move", help="move a workspace and its history to another instance (resumable)")
    wm.add_argument("slug")
    wm.add_argument("--to", required=True, help="the instance's name (`default`: the hub's own servers)")
    wm.add_argument("--stop-after", choices=["holding", "routed", "drained", "copied", "released"],
                    help="stop once this step is done (to inspect); running the move again resumes it")  # fmt: skip
    wm.set_defaults(fn=_async(_workspace_move))
    wp = ws.add_parser("set-plan", help="set a workspace's plan (edges see it within a second); prints JSON")
    wp.add_argument("slug")
    wp.add_argument("plan", choices=sorted(plans.PLANS))
    wp.set_defaults(fn=_async(_workspace_set_plan))

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    kc = key.add_parser("create", help="create a key; prints JSON with the key (shown only here)")
    kc.add_argument("--workspace", required=True, help="workspace slug")
    kc.add_argument("--scopes", nargs="+", default=["write"], help="scopes or bundles, e.g. track:write or write")
    kc.add_argument("--name", default="cli")
    kc.add_argument("--expires-at", help="ISO 8601 time after which the key stops working")
    kc.set_defaults(fn=_async(_key_create))
    ev = sub.add_parser("events", help="print a workspace's latest stored events, one JSON object a line")
    ev.add_argument("--workspace", required=True, help="workspace slug")
    ev.add_argument("--limit", type=int, default=10)
    ev.set_defaults(fn=_async(_events))

    ml = sub.add_parser("mail", help="print the latest messages of the local mailbox (no EVENTPLANE_SMTP_URL)")
    ml.add_argument("--limit", type=int, default=5)
    ml.set_defaults(fn=cmd_mail)

    kr = key.add_parser("revoke", help="revoke a key (edges refuse it within a second)")
    kr.add_argument("key_id")
    kr.set_defaults(fn=_async(_key_revoke))
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.fn(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
