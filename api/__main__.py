"""`python -m api`: serve the management API on EVENTPLANE_API_HOST:EVENTPLANE_API_PORT until SIGTERM."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from eventplane import logs, servers, serving
from eventplane.settings import Settings


def main() -> None:
    settings = servers.resolve(Settings.from_env()).settings
    logs.configure(settings.log_format, settings.log_level)
    config = serving.config(
        create_app(settings), settings, host=settings.api_host, port=settings.api_port, loop="uvloop",
        log_config=None, timeout_graceful_shutdown=20, server_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
