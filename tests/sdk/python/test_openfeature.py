"""The OpenFeature provider through openfeature's own api, against the local flag edge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from experimentation_sdk import ExperimentationClient
from experimentation_sdk.openfeature import EventPlaneProvider
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tests.sdk.python.flag_server import FlagServer

BASE = {"enabled": True, "salt": "a1b2c3d4e5f6", "rollout": 100, "rules": [], "values": []}
PRO = {"id": "r1", "match": "all", "conditions": [{"attribute": "plan", "operator": "eq", "value": "pro"}],
       "rollout": 100}  # fmt: skip
FLAGS: list[dict[str, Any]] = [
    {**BASE, "key": "new-ui", "value_type": "boolean", "default_value": False, "on_value": True, "rollout": 0,
     "rules": [PRO]},
    {**BASE, "key": "color", "value_type": "string", "default_value": "black", "on_value": "white",
     "values": [{"key": "blue", "value": "#00f", "weight": 100}]},
    {**BASE, "key": "limit", "value_type": "number", "default_value": 1, "on_value": 10},
    {**BASE, "key": "ratio", "value_type": "number", "default_value": 0.5, "on_value": 2},
    {**BASE, "key": "layout", "value_type": "object", "default_value": {}, "on_value": {"cols": [1, 2]}},
    {**BASE, "key": "half", "value_type": "boolean", "default_value": False, "on_value": True, "rollout": 50},
]  # fmt: skip


@pytest.fixture
def of_client() -> Iterator[Any]:
    with FlagServer().running() as server:
        server.publish(FLAGS)
        client = ExperimentationClient("ep_live_test", server.url, flush_at_exit=False)
        api.set_provider_and_wait(EventPlaneProvider(client))
        try:
            yield api.get_client()
        finally:
            api.shutdown()
            client.close()


def test_boolean_details_follow_targeting(of_client: Any) -> None:
    pro = of_client.get_boolean_details("new-ui", False, EvaluationContext("u1", {"plan": "pro"}))
    assert (pro.value, pro.reason, pro.error_code) == (True, Reason.TARGETING_MATCH, None)
    free = of_client.get_boolean_details("new-ui", True, EvaluationContext("u1", {"plan": "free"}))
    assert (free.value, free.reason) == (False, Reason.DEFAULT)


def test_string_integer_float_object_values(of_client: Any) -> None:
    ctx = EvaluationContext("ユーザー")
    color = of_client.get_string_details("color", "none", ctx)
    assert (color.value, color.variant, color.reason) == ("#00f", "blue", Reason.SPLIT)
    assert of_client.get_integer_value("limit", 0, ctx) == 10
    assert of_client.get_float_value("ratio", 0.0, ctx) == 2.0
    assert of_client.get_object_value("layout", {}, ctx) == {"cols": [1, 2]}


def test_errors_answer_the_default_with_openfeature_codes(of_client: Any) -> None:
    missing = of_client.get_boolean_details("nope", True, EvaluationContext("u1"))
    assert (missing.value, missing.reason, missing.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    no_unit = of_client.get_boolean_details("half", True, EvaluationContext())
    assert (no_unit.value, no_unit.error_code) == (True, ErrorCode.TARGETING_KEY_MISSING)
    mismatch = of_client.get_integer_details("color", 3, EvaluationContext("u1"))
    assert (mismatch.value, mismatch.reason, mismatch.error_code) == (3, Reason.ERROR, ErrorCode.TYPE_MISMATCH)


def test_anonymous_id_and_user_id_attributes_are_units(of_client: Any) -> None:
    by_attribute = of_client.get_boolean_details("half", False, EvaluationContext(None, {"anonymous_id": "a-1"}))
    assert by_attribute.reason in (Reason.SPLIT, Reason.DEFAULT) and by_attribute.error_code is None
