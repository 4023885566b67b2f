"""`python -m ingest`: serve the edge on EVENTPLANE_INGEST_HOST:EVENTPLANE_INGEST_PORT until SIGTERM."""

from __future__ import annotations

import uvicorn

from eventplane import logs, servers, serving
from eventplane.settings import Settings
from ingest.app import create_app


def main() -> None:
    settings = servers.resolve(Settings.from_env()).settings
    logs.configure(settings.log_format, settings.log_level)
    config = serving.config(
        create_app(settings), settings, host=settings.ingest_host, port=settings.ingest_port, loop="uvloop",
        access_log=False, log_config=None, timeout_graceful_shutdown=20, server_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
