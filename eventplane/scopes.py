"""API key scopes and the bundles that expand to them."""

from __future__ import annotations

from collections.abc import Iterable

FLAGS_READ = "flags:read"
EXPERIMENTS_READ = "experiments:read"
# On the management API: a rollout-only change of a flag (rollout, enabled) / of an experiment (allocation).
FLAGS_WRITE = "flags:write"
EXPERIMENTS_WRITE = "experiments:write"
TRACK_WRITE = "track:write"
WORKSPACE_READ = "workspace:read"
# Reading stored events (list, export, live stream, event types). In no bundle but `admin`: events hold
# end users' ids and properties, and keys made with `read` before this scope existed must not gain it.
EVENTS_READ = "events:read"
ADMIN = "admin"

SCOPES = frozenset(
    {FLAGS_READ, EXPERIMENTS_READ, FLAGS_WRITE, EXPERIMENTS_WRITE, TRACK_WRITE, WORKSPACE_READ, EVENTS_READ, ADMIN}
)

# A bundle names a set of scopes. `admin` is both a scope and a bundle that contains every scope.
BUNDLES: dict[str, frozenset[str]] = {
    "read": frozenset({FLAGS_READ, EXPERIMENTS_READ, WORKSPACE_READ}),
    "write": frozenset({FLAGS_READ, EXPERIMENTS_READ, WORKSPACE_READ, TRACK_WRITE, FLAGS_WRITE, EXPERIMENTS_WRITE}),
    "admin": SCOPES,
}


class UnknownScope(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def validate(names: Iterable[str]) -> list[str]:
    """The names as given (deduplicated, order kept); raises UnknownScope for a name that is neither."""
    out: list[str] = []
    for name in names:
        if name not in SCOPES and name not in BUNDLES:
            raise UnknownScope(name)
        if name not in out:
            out.append(name)
    return out


def expand(names: Iterable[str]) -> frozenset[str]:
    """Every scope that the given scopes and bundles grant."""
    granted: set[str] = set()
    for name in names:
        granted |= BUNDLES.get(name, frozenset({name}) if name in SCOPES else frozenset())
    return frozenset(granted)
