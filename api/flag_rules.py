"""What a flag or experiment definition must satisfy beyond its JSON Schema, checked before it is stored
(so every SDK evaluating the document finds it well formed). Each failure is a 400 VALIDATION_ERROR
naming the field. Pure functions: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from api.flag_wire import Condition, FlagValue, Rule, Targeting, Variant
from eventplane.errors import ApiError, validation

# MAJOR.MINOR.PATCH[-prerelease] of SemVer 2.0 (no build metadata: the evaluators do not rank it).
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER = re.compile(rf"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-{_IDENT}(?:\.{_IDENT})*)?")
_LIST_OPS = {"in", "not_in"}
_SCALAR_OPS = {"eq", "neq", "contains", "not_contains"}
_NUMBER_OPS = {"gt", "gte", "lt", "lte"}
MAX_LIST = 1000
BUCKETS = 10_000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def no_nul(value: Any, path: str) -> None:
    """Postgres' jsonb cannot hold NUL in a string (or a key): refuse it as a 400, not a failed insert."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "INVALID_CHARACTER", f"'{path}' holds a NUL character", {"field": path})
    elif isinstance(value, list):
        for i, item in enumerate(value):
            no_nul(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key, path)
            no_nul(item, f"{path}.{key}")


def percent(value: float, path: str) -> None:
    """At most 2 decimals: a percentage is a whole number of the 10,000 buckets."""
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise validation(f"'{path}' takes at most 2 decimals (one bucket is 0.01 %)", path)


def condition(c: Condition, path: str) -> None:
    op, value = c.operator, c.value
    if op in _LIST_OPS:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST or not all(map(_is_scalar, value)):
            raise validation(f"'{op}' takes a list of 1 to {MAX_LIST} strings, numbers or booleans", f"{path}.value")
    elif op in _SCALAR_OPS:
        if not _is_scalar(value):
            raise validation(f"'{op}' takes a string, number or boolean", f"{path}.value")
    elif op in _NUMBER_OPS:
        if not _is_number(value):
            raise validation(f"'{op}' takes a number", f"{path}.value")
    elif not isinstance(value, str) or SEMVER.fullmatch(value) is None:
        raise validation(f"'{op}' takes a version MAJOR.MINOR.PATCH[-prerelease], such as 1.4.0", f"{path}.value")
    no_nul(value, f"{path}.value")


def conditions(items: Sequence[Condition], path: str) -> None:
    for i, c in enumerate(items):
        condition(c, f"{path}[{i}]")


def weights(items: Sequence[FlagValue | Variant], path: str) -> None:
    """Unique keys, and weights of at most 2 decimals summing to exactly 100."""
    seen: set[str] = set()
    total = 0
    for i, item in enumerate(items):
        if item.key in seen:
            raise validation(f"Key '{item.key}' appears twice", f"{path}[{i}].key")
        seen.add(item.key)
        percent(item.weight, f"{path}[{i}].weight")
        total += round(item.weight * 100)
    if items and total != BUCKETS:
        raise validation(f"The weights of '{path}' sum to {total / 100:g}, not 100", path)


def value_of_type(value_type: str, value: Any, path: str) -> None:
    ok = {
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "number": _is_number(value),
        "object": isinstance(value, dict | list),
    }[value_type]
    if not ok:
        raise validation(f"'{path}' must be a {value_type} value (the flag's value_type)", path)
    no_nul(value, path)


def rules(items: Sequence[Rule], value_type: str) -> list[dict[str, Any]]:
    """The rules as stored: each with an id (r1, r2... by position when not given), unique."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, rule in enumerate(items):
        path = f"rules[{i}]"
        rule_id = f"r{i + 1}" if rule.id is msgspec.UNSET else rule.id
        if rule_id in seen:
            raise validation(f"Rule id '{rule_id}' appears twice", f"{path}.id")
        seen.add(rule_id)
        conditions(rule.conditions, f"{path}.conditions")
        percent(rule.rollout, f"{path}.rollout")
        stored = {"id": rule_id, "match": rule.match, "conditions": [msgspec.to_builtins(c) for c in rule.conditions],
                  "rollout": rule.rollout}  # fmt: skip
        if rule.value is not msgspec.UNSET:
            value_of_type(value_type, rule.value, f"{path}.value")
            stored["value"] = rule.value
        out.append(stored)
    return out


def targeting(t: Targeting) -> dict[str, Any]:
    conditions(t.conditions, "targeting.conditions")
    stored: dict[str, Any] = msgspec.to_builtins(t)
    return stored
