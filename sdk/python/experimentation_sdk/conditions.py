"""Targeting conditions (docs/flags.md): one attribute, one operator, one value; rules combine them.

Values are compared as JSON values with their types: a string never equals a number, a boolean is not a
number. A missing attribute (absent or null) matches only the negated operators. An unknown operator or
a malformed value (a non-list for `in`) never matches, so a bad definition turns a rule off, not on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

_SemverKey = tuple[int, int, int, tuple[tuple[int, int, str], ...] | None]
NEGATED = frozenset({"neq", "not_in", "not_contains"})
_SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)


def lookup(context: Mapping[str, Any], attribute: Any) -> Any:
    """The attribute's value in the evaluation context; None when it is missing."""
    if attribute == "user_id" or attribute == "anonymous_id":
        return context.get(attribute)
    attributes = context.get("attributes")
    if type(attributes) is dict or isinstance(attributes, Mapping):
        return attributes.get(attribute)
    return None


def matches(condition: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    operator = condition.get("operator")
    actual = lookup(context, condition.get("attribute"))
    if actual is None:
        return operator in NEGATED
    test = _OPERATORS.get(operator) if type(operator) is str else None
    return test is not None and test(actual, condition.get("value"))


def all_or_any(block: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """A rule's or a targeting block's conditions, combined by its `match` ("all" when absent); no
    conditions match everyone, conditions that are not a list nobody. Plain loops: the edge's hot path."""
    conditions: Sequence[Mapping[str, Any]] | None = block.get("conditions")
    if type(conditions) is not list:
        return conditions is None
    if not conditions:
        return True
    match = block.get("match", "all")
    if match == "all":
        for condition in conditions:  # noqa: SIM110 - a loop, not a generator: the hot path
            if not matches(condition, context):
                return False
        return True
    if match == "any":
        for condition in conditions:
            if matches(condition, context):
                return True
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON scalars of one type (1 == 1.0; True != 1; lists and objects never equal)."""
    if isinstance(a, str | bool):
        return type(a) is type(b) and a == b
    return _is_number(a) and _is_number(b) and a == b


def _in(actual: Any, expected: Any) -> bool:
    return isinstance(expected, list) and any(_same(actual, item) for item in expected)


def _valid_list(actual: Any, expected: Any) -> bool:
    return isinstance(expected, list) and not _in(actual, expected)


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    return isinstance(actual, list) and any(_same(item, expected) for item in actual)


def _not_contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected not in actual
    return isinstance(actual, list) and not any(_same(item, expected) for item in actual)


def _numeric(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda actual, expected: _is_number(actual) and _is_number(expected) and compare(actual, expected)


@lru_cache(maxsize=1024)
def _parse_semver(version: str) -> _SemverKey | None:
    found = _SEMVER.fullmatch(version)
    if found is None:
        return None
    major, minor, patch, pre = found.groups()
    ids = None if pre is None else tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in pre.split("."))
    return int(major), int(minor), int(patch), ids


def semver_key(version: Any) -> _SemverKey | None:
    """A sort key ordering versions per SemVer 2.0 (build metadata ignored); None when invalid.
    A release (prerelease None) is mapped above every prerelease of the same version by `_semver`."""
    return _parse_semver(version) if isinstance(version, str) else None


def _semver(compare: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def test(actual: Any, expected: Any) -> bool:
        a, b = semver_key(actual), semver_key(expected)
        return a is not None and b is not None and compare(_order(a, b))

    return test


def _order(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    pre_a, pre_b = a[3], b[3]
    if pre_a == pre_b:
        return 0
    if pre_a is None or pre_b is None:
        return 1 if pre_a is None else -1
    return -1 if pre_a < pre_b else 1


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _same,
    "neq": lambda actual, expected: not _same(actual, expected),
    "in": _in,
    "not_in": _valid_list,
    "contains": _contains,
    "not_contains": _not_contains,
    "gt": _numeric(lambda a, b: a > b),
    "gte": _numeric(lambda a, b: a >= b),
    "lt": _numeric(lambda a, b: a < b),
    "lte": _numeric(lambda a, b: a <= b),
    "semver_eq": _semver(lambda order: order == 0),
    "semver_gt": _semver(lambda order: order > 0),
    "semver_gte": _semver(lambda order: order >= 0),
    "semver_lt": _semver(lambda order: order < 0),
    "semver_lte": _semver(lambda order: order <= 0),
}
