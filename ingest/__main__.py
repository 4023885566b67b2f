"""`python -m ingest`: serve the edge on EVENTPLANE_INGEST_HOST:EVENTPLANE_INGEST_PORT until SIGTERM."""

from __future__ import annotations

import uvicorn

from eventplane import logs, servers
from eventplane.settings import Settings
from ingest.app import create_app


def main() -> None:
    settings = servers.resolve(Settings.from_env()).settings
    logs.configure(settings.log_format, settings.log_level)
    uvicorn.run(
        create_app(settings), host=settings.ingest_host, port=settings.ingest_port, loop="uvloop",
        http="httptools", access_log=False, log_config=None, timeout_graceful_shutdown=20,
        proxy_headers=False, server_header=False,  # the edge reads no client address
    )  # fmt: skip


if __name__ == "__main__":
    main()
