"""The pure evaluation module against the golden vectors (shared with the JS SDK and the edge), and the
statistical promises: uniform buckets, assignment by weight, monotone rollouts, exclusive namespaces."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import mmh3
import pytest
from experimentation_sdk import bucketing
from experimentation_sdk.bucketing import BUCKETS, bucket, murmur3_32_pure
from experimentation_sdk.conditions import _OPERATORS
from experimentation_sdk.evaluation import Assignment, assign, evaluate_flag
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

VECTORS = Path(__file__).parents[3] / "sdk" / "vectors"
BUCKET_CASES: list[dict[str, Any]] = json.loads((VECTORS / "bucketing.json").read_text("utf-8"))
EVAL_CASES: list[dict[str, Any]] = json.loads((VECTORS / "evaluation.json").read_text("utf-8"))
UNITS = [f"unit-{i}" for i in range(100_000)]  # fixed ids: the statistical tests are deterministic
P_FLOOR = 0.001


def _experiment(**changes: Any) -> dict[str, Any]:
    experiment: dict[str, Any] = {
        "key": "exp", "status": "running", "salt": "5e1ec7ed0000", "bucket_version": 1, "allocation": 100,
        "targeting": {}, "namespace": None, "sticky": "local",
        "variants": [{"key": "a", "weight": 20}, {"key": "b", "weight": 30}, {"key": "c", "weight": 50}],
    }  # fmt: skip
    return experiment | changes


@pytest.mark.parametrize("case", BUCKET_CASES, ids=lambda c: f"{c['salt']}:{c['key']}:{c['unit_id'][:20]!r}")
def test_bucket_vectors(case: dict[str, Any]) -> None:
    data = f"{case['salt']}:{case['key']}:{case['unit_id']}".encode()
    assert mmh3.hash(data, 0, signed=False) % BUCKETS == case["bucket"], "the vector disagrees with PyPI mmh3"
    assert bucket(case["salt"], case["key"], case["unit_id"]) == case["bucket"]
    assert murmur3_32_pure(data) % BUCKETS == case["bucket"]


def test_bucket_vectors_cover_the_hard_ids() -> None:
    ids = [c["unit_id"] for c in BUCKET_CASES]
    assert len(BUCKET_CASES) >= 60
    assert "" in ids and any(len(i) >= 1000 for i in ids) and any(":" in i for i in ids)
    assert any("\u200d" in i for i in ids), "an emoji ZWJ sequence"
    assert any(0x1F1E6 <= ord(ch) <= 0x1F1FF for i in ids for ch in i), "a flag (regional indicators)"
    assert any(unicodedata.combining(ch) for i in ids for ch in i), "a combining mark"
    assert any("\u4e00" <= ch <= "\u9fff" for i in ids for ch in i), "CJK"
    assert any(0x80 <= ord(ch) <= 0xFF for i in ids for ch in i), "Latin-1"
    assert any(c["salt"] == "" for c in BUCKET_CASES) and any(c["key"] == "" for c in BUCKET_CASES)


@given(st.binary(max_size=64), st.integers(0, 2**32 - 1))
def test_pure_murmur3_equals_mmh3(data: bytes, seed: int) -> None:
    assert murmur3_32_pure(data, seed) == mmh3.hash(data, seed, signed=False)


@given(st.text(max_size=40))
def test_bucket_of_any_text_is_mmh3_of_its_utf8(unit: str) -> None:
    expected = mmh3.hash(f"s:k:{unit}".encode(), 0, signed=False) % BUCKETS
    assert bucket("s", "k", unit) == expected
    assert murmur3_32_pure(f"s:k:{unit}".encode()) % BUCKETS == expected


@pytest.mark.parametrize("case", EVAL_CASES, ids=lambda c: str(c["name"]))
def test_evaluation_vectors(case: dict[str, Any]) -> None:
    detail = case.get("detail", {})
    if "flag" in case:
        result = evaluate_flag(case["flag"], case["context"])
        assert {"enabled": result.enabled, "value": result.value, "reason": result.reason} == case["expected"]
        assert (result.variant, result.error_code) == (detail.get("variant"), detail.get("error_code"))
        assert result.as_dict()["key"] == case["flag"]["key"]
    else:
        assigned = assign(case["experiment"], case["context"])
        assert {"variant": assigned.variant, "reason": assigned.reason} == case["expected"]
        assert assigned.error_code == detail.get("error_code")


def test_evaluation_vectors_cover_every_operator_and_reason() -> None:
    flags = [c for c in EVAL_CASES if "flag" in c]
    operators = {cond["operator"] for c in flags for rule in c["flag"]["rules"] for cond in rule["conditions"]}
    assert set(_OPERATORS) <= operators
    assert {c["expected"]["reason"] for c in flags} == {"DISABLED", "TARGETING_MATCH", "SPLIT", "DEFAULT", "ERROR"}
    reasons = {c["expected"]["reason"] for c in EVAL_CASES if "experiment" in c}
    assert reasons == {"NOT_RUNNING", "TARGETING_MISS", "NAMESPACE_MISS", "NOT_ALLOCATED", "SPLIT", "ERROR"}
    assert len(flags) >= 60 and len(EVAL_CASES) - len(flags) >= 20


def test_buckets_are_uniform_over_100_000_units() -> None:
    counts = [0] * BUCKETS
    for unit in UNITS:
        counts[bucket("a1b2c3d4e5f6", "checkout", unit)] += 1
    assert chisquare(counts).pvalue > P_FLOOR  # 10 expected per bucket
    coarse = [sum(counts[i : i + 100]) for i in range(0, BUCKETS, 100)]
    assert chisquare(coarse).pvalue > P_FLOOR


def test_variants_are_assigned_by_weight() -> None:
    experiment = _experiment()
    counts = {"a": 0, "b": 0, "c": 0}
    for unit in UNITS:
        variant = assign(experiment, {"user_id": unit}).variant
        assert variant is not None
        counts[variant] += 1
    expected = [len(UNITS) * w / 100 for w in (20, 30, 50)]
    assert chisquare(list(counts.values()), expected).pvalue > P_FLOOR


def test_a_skewed_split_fails_the_same_check() -> None:
    """The uniformity check can fail: weights 20/30/50 measured against 25/25/50 are rejected."""
    experiment = _experiment()
    counts = {"a": 0, "b": 0, "c": 0}
    for unit in UNITS[:20_000]:
        counts[str(assign(experiment, {"user_id": unit}).variant)] += 1
    assert chisquare(list(counts.values()), [5000, 5000, 10_000]).pvalue < P_FLOOR


def test_rollouts_are_monotone() -> None:
    flag: dict[str, Any] = {"key": "checkout", "enabled": True, "salt": "a1b2c3d4e5f6", "rules": [], "values": []}
    units = UNITS[:10_000]
    at = {p: {u for u in units if evaluate_flag(flag | {"rollout": p}, {"user_id": u}).enabled} for p in (10, 20)}
    assert at[10] <= at[20]
    assert 900 < len(at[10]) < 1100 and 1850 < len(at[20]) < 2150
    rule = {"id": "r", "match": "all", "conditions": [], "rollout": 10}
    by_rule = {u for u in units if evaluate_flag(flag | {"rollout": 0, "rules": [rule]}, {"user_id": u}).enabled}
    assert by_rule == at[10], "a rule's rollout uses the flag's bucket"


def test_experiments_in_one_namespace_never_share_a_unit() -> None:
    left = _experiment(key="left", salt="111111111111", namespace={"name": "checkout", "start": 0, "end": 4000})
    right = _experiment(key="right", salt="222222222222", namespace={"name": "checkout", "start": 4000, "end": 10_000})
    both, counts = 0, {"left": 0, "right": 0}
    for unit in UNITS[:10_000]:
        in_left = assign(left, {"user_id": unit}).exposed
        in_right = assign(right, {"user_id": unit}).exposed
        both += in_left and in_right
        counts["left"] += in_left
        counts["right"] += in_right
    assert both == 0
    assert 3800 < counts["left"] < 4200 and 5800 < counts["right"] < 6200


def test_sticky_assignment_survives_a_weight_change() -> None:
    before = _experiment(variants=[{"key": "a", "weight": 50}, {"key": "b", "weight": 50}])
    after = _experiment(variants=[{"key": "a", "weight": 1}, {"key": "b", "weight": 99}])
    units = UNITS[:2000]
    recorded = {u: str(assign(before, {"user_id": u}).variant) for u in units}
    moved = [u for u in units if assign(after, {"user_id": u}).variant != recorded[u]]
    assert len(moved) > 500, "without stickiness the new weights move units"

    def sticky(experiment: Any, unit: str) -> str | None:
        return recorded.get(unit)

    answers = {u: assign(after, {"user_id": u}, sticky) for u in units}
    assert all(a == Assignment(recorded[u], "STICKY") for u, a in answers.items())


def test_sticky_comes_before_targeting_and_ignores_removed_variants() -> None:
    targeted = _experiment(targeting={"conditions": [{"attribute": "plan", "operator": "eq", "value": "pro"}]})
    assert assign(targeted, {"user_id": "u"}, lambda e, u: "b") == Assignment("b", "STICKY")
    assert assign(targeted, {"user_id": "u"}, lambda e, u: "gone").reason == "TARGETING_MISS"
    assert assign(_experiment(status="stopped"), {"user_id": "u"}, lambda e, u: "b").reason == "NOT_RUNNING"


def test_the_fast_hash_is_the_pure_one_where_mmh3_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bucketing, "_fast", bucketing.murmur3_32_pure)
    for case in BUCKET_CASES:
        assert bucket(case["salt"], case["key"], case["unit_id"]) == case["bucket"]


def test_results_as_the_edge_answers() -> None:
    flag = {"key": "f", "enabled": True, "salt": "s", "rollout": 100, "rules": []}
    assert evaluate_flag(flag, {}).as_dict() == {"key": "f", "enabled": True, "value": True, "reason": "SPLIT"}
    assert evaluate_flag(flag | {"rollout": 50}, {}).as_dict() == {
        "key": "f", "enabled": False, "value": False, "reason": "ERROR", "error_code": "TARGETING_KEY_MISSING",
    }  # fmt: skip
    assert assign(_experiment(status="draft"), {}).as_dict() == {"variant": None, "reason": "NOT_RUNNING"}
