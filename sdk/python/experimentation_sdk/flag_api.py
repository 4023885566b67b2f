"""The client's flag and experiment methods (a mixin, so client.py only wires `_flags`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experimentation_sdk.evaluation import Assignment, FlagResult
from experimentation_sdk.flags import Flags, context_of


class FlagMethods:
    _flags: Flags

    def is_enabled(
        self,
        key: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        default: bool = False,
    ) -> bool:
        """Whether the flag is on for this user; `default` on any error (unknown flag, no answer within
        `flag_timeout`). Never raises."""
        result = self._flags.flag(key, context_of(user_id, anonymous_id, attributes), default)
        return default if result.reason == "ERROR" else result.enabled

    def get_value(
        self,
        key: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        default: Any = None,
    ) -> Any:
        """The flag's value for this user (its multivariate value, a rule's value, `on_value`, or the
        flag's `default_value` when off); `default` on any error."""
        return self._flags.flag(key, context_of(user_id, anonymous_id, attributes), default).value

    def flag_details(
        self,
        key: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        default: Any = None,
    ) -> FlagResult:
        """The whole answer: enabled, value, reason, variant, error_code."""
        return self._flags.flag(key, context_of(user_id, anonymous_id, attributes), default)

    def get_variant(
        self,
        key: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        default: str | None = None,
    ) -> str | None:
        """The experiment's variant for this user, or None when not in the experiment (not running,
        targeting or namespace miss, not allocated); `default` on any error. A local assignment is
        tracked as a `$exposure` event once per user (the edge records remote ones)."""
        return self.variant_details(
            key, user_id=user_id, anonymous_id=anonymous_id, attributes=attributes, default=default
        ).variant

    def variant_details(
        self,
        key: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        default: str | None = None,
    ) -> Assignment:
        return self._flags.variant(key, context_of(user_id, anonymous_id, attributes), default)

    def wait_for_flags(self, timeout: float = 5.0) -> bool:
        """Start following the config now and wait for the first document; whether it came in time.
        Optional: evaluations before it are answered remotely."""
        return self._flags.wait_ready(timeout)
