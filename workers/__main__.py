"""`python -m workers`: run one worker process (arq workers, restarted on Redis loss) until SIGTERM."""

from __future__ import annotations

import sys

import uvloop

from eventplane import logs, servers
from eventplane.settings import Settings
from workers.main import serve


def main() -> None:
    resolved = servers.resolve(Settings.from_env())
    settings = resolved.settings
    for name in resolved.started:
        print(f"started embedded {name} under {settings.data_dir} (stop it with `eventplane servers stop`)",
              file=sys.stderr)  # fmt: skip
    logs.configure(settings.log_format, settings.log_level)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
