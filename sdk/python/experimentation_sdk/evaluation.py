"""Evaluating a flag and assigning an experiment from their definitions (docs/flags.md): pure, no I/O.

The edge imports this module too, so a local answer in the SDK equals the edge's remote one. Inputs are
the config document's JSON objects as dicts; the context is `{"user_id", "anonymous_id", "attributes"}`.
The unit is `user_id`, else `anonymous_id`; it is needed only where a bucket decides (a rollout strictly
between 0 and 100, a multivariate value, an experiment), else the answer is ERROR/TARGETING_KEY_MISSING.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from experimentation_sdk.bucketing import BUCKETS, bucket, pick, ranges, threshold
from experimentation_sdk.conditions import all_or_any, matches

__all__ = [
    "Assignment", "FlagResult", "all_or_any", "assign", "evaluate_flag", "exposure_message_id", "matches", "unit_of",
]  # fmt: skip

StickyLookup = Callable[[Mapping[str, Any], str], "str | None"]
TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"


@dataclass(frozen=True, slots=True)
class FlagResult:
    key: str
    enabled: bool
    value: Any
    reason: str  # DISABLED, TARGETING_MATCH, SPLIT, DEFAULT, ERROR
    variant: str | None = None  # the multivariate value's key, when one was picked
    error_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The edge's evaluate answer: key, enabled, value, reason (+ variant, error_code when set)."""
        out: dict[str, Any] = {"key": self.key, "enabled": self.enabled, "value": self.value, "reason": self.reason}
        if self.variant is not None:
            out["variant"] = self.variant
        if self.error_code is not None:
            out["error_code"] = self.error_code
        return out


@dataclass(frozen=True, slots=True)
class Assignment:
    variant: str | None
    reason: str  # NOT_RUNNING, STICKY, TARGETING_MISS, NAMESPACE_MISS, NOT_ALLOCATED, SPLIT, ERROR
    error_code: str | None = None

    @property
    def exposed(self) -> bool:
        """An assignment that returns a variant is an exposure."""
        return self.variant is not None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"variant": self.variant, "reason": self.reason}
        if self.error_code is not None:
            out["error_code"] = self.error_code
        return out


class _NoUnit(Exception):
    pass


def unit_of(context: Mapping[str, Any]) -> str | None:
    """The unit a bucket is computed for: user_id when given (non-empty), else anonymous_id."""
    for name in ("user_id", "anonymous_id"):
        unit = context.get(name)
        if isinstance(unit, str) and unit:
            return unit
    return None


def evaluate_flag(flag: Mapping[str, Any], context: Mapping[str, Any]) -> FlagResult:
    """The flag's answer for this context; the first matching rule decides, else the flag's rollout."""
    key: str = flag["key"]
    default = flag.get("default_value", False if not flag.get("values") else None)
    if not flag.get("enabled"):
        return FlagResult(key, False, default, "DISABLED")
    unit = unit_of(context)
    rollout_bucket: list[int] = []  # computed at most once, only when a rollout needs it
    try:
        for rule in flag.get("rules") or ():
            if all_or_any(rule, context):
                if not _in_rollout(flag, rule.get("rollout", 100), unit, rollout_bucket):
                    return FlagResult(key, False, default, "TARGETING_MATCH")
                if rule.get("value") is not None:
                    return FlagResult(key, True, rule["value"], "TARGETING_MATCH")
                return _on(flag, unit, "TARGETING_MATCH")
        if _in_rollout(flag, flag.get("rollout", 0), unit, rollout_bucket):
            return _on(flag, unit, "SPLIT")
    except _NoUnit:
        return FlagResult(key, False, default, "ERROR", error_code=TARGETING_KEY_MISSING)
    return FlagResult(key, False, default, "DEFAULT")


def _in_rollout(flag: Mapping[str, Any], percentage: float, unit: str | None, cache: list[int]) -> bool:
    limit = threshold(percentage)
    if limit <= 0 or limit >= BUCKETS:
        return limit >= BUCKETS
    if not cache:
        if unit is None:
            raise _NoUnit
        cache.append(bucket(flag["salt"], flag["key"], unit))
    return cache[0] < limit


def _on(flag: Mapping[str, Any], unit: str | None, reason: str) -> FlagResult:
    values = flag.get("values")
    if values:
        if unit is None:
            raise _NoUnit
        index = pick(bucket(flag["salt"] + ".value", flag["key"], unit), ranges([v["weight"] for v in values]))
        if index is not None:
            chosen = values[index]
            return FlagResult(flag["key"], True, chosen.get("value"), reason, variant=chosen.get("key"))
    return FlagResult(flag["key"], True, flag.get("on_value", True), reason)


def assign(
    experiment: Mapping[str, Any], context: Mapping[str, Any], sticky_lookup: StickyLookup | None = None
) -> Assignment:
    """The unit's variant, or None with the reason. `sticky_lookup(experiment, unit)` answers a variant
    already recorded for the experiment's current bucket_version (the edge's store); a recorded variant
    that the experiment no longer lists is ignored."""
    if experiment.get("status") != "running":
        return Assignment(None, "NOT_RUNNING")
    unit = unit_of(context)
    if unit is None:
        return Assignment(None, "ERROR", TARGETING_KEY_MISSING)
    variants = experiment.get("variants") or ()
    if sticky_lookup is not None:
        recorded = sticky_lookup(experiment, unit)
        if recorded is not None and any(v.get("key") == recorded for v in variants):
            return Assignment(recorded, "STICKY")
    if not all_or_any(experiment.get("targeting") or {}, context):
        return Assignment(None, "TARGETING_MISS")
    namespace = experiment.get("namespace")
    if namespace and not namespace["start"] <= bucket(namespace["name"], "namespace", unit) < namespace["end"]:
        return Assignment(None, "NAMESPACE_MISS")
    salt, key = experiment["salt"], experiment["key"]
    if bucket(salt + ".alloc", key, unit) >= threshold(experiment.get("allocation", 100)):
        return Assignment(None, "NOT_ALLOCATED")
    index = pick(bucket(salt, key, unit), ranges([v["weight"] for v in variants]))
    if index is None:  # weights summing under 100 leave the top buckets unassigned
        return Assignment(None, "NOT_ALLOCATED")
    return Assignment(variants[index]["key"], "SPLIT")


MAX_MESSAGE_ID = 100  # the edge's limit


def exposure_message_id(experiment_key: str, bucket_version: int, unit: str) -> str:
    """The `$exposure` event's deterministic message_id, so the ledger stores one per unit and bucket
    version whoever records it (the edge for a remote assign, the SDK for a local one):
    "exp:<key>:<bucket_version>:<unit>", or, past the edge's 100 characters, "exp:" + its SHA-256."""
    message_id = f"exp:{experiment_key}:{bucket_version}:{unit}"
    if len(message_id) <= MAX_MESSAGE_ID:
        return message_id
    return "exp:" + hashlib.sha256(message_id.encode()).hexdigest()
