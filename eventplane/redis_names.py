"""The names of every Redis key and channel EventPlane uses, under one prefix."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RedisNames:
    """Every Redis key EventPlane uses, under one prefix (tests use their own prefix). Whoever writes
    key-cache entries also needs `cache_secret` (`eventplane.apikeys.redis_keys` fills it in)."""

    prefix: str
    cache_secret: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def queue(self) -> str:
        return f"{self.prefix}queue"

    @property
    def pending(self) -> str:
        return f"{self.prefix}pending"

    @property
    def queued_events(self) -> str:
        return f"{self.prefix}queued_events"

    @property
    def failures(self) -> str:
        """Per job id, how many times storing it failed for an unexpected reason (not a transient one)."""
        return f"{self.prefix}failures"

    @property
    def held(self) -> str:
        """Workspaces being moved onto this Redis's instance: its workers hold their jobs (eventplane/moves.py)."""
        return f"{self.prefix}held"

    @property
    def key_channel(self) -> str:
        return f"{self.prefix}apikeys:invalidate"

    @property
    def config_channel(self) -> str:
        """Carries a workspace id after any flag or experiment change committed (eventplane/flagconfig.py)."""
        return f"{self.prefix}flags:config"

    def live_events(self, workspace_id: str) -> str:
        """Carries a workspace's newly stored events, published by workers after commit (eventplane/live.py)."""
        return f"{self.prefix}events:live:{workspace_id}"

    @property
    def workspace_config_channel(self) -> str:
        """Carries a workspace id after its settings or public keys changed (eventplane/workspace_config.py)."""
        return f"{self.prefix}workspace:config"

    def api_key(self, key_hash: str) -> str:
        return f"{self.prefix}apikey:{key_hash}"

    def rate_bucket(self, workspace_id: str) -> str:
        return f"{self.prefix}rate:{workspace_id}"

    @property
    def key_last_used(self) -> str:
        return f"{self.prefix}apikeys:last_used"

    def flag_config(self, workspace_id: str) -> str:
        """A workspace's config document as the edges cache it: a hash {v: version, b: body}."""
        return f"{self.prefix}flagconfig:{workspace_id}"

    def sticky(self, workspace_id: str, experiment: str, salt: str, bucket_version: int) -> str:
        """Recorded assignments of one experiment at one bucket version: a hash unit -> variant."""
        return f"{self.prefix}sticky:{workspace_id}:{experiment}:{salt}:{bucket_version}"
