"""An OpenFeature provider (PyPI `openfeature-sdk`, the SDK's `openfeature` extra) over the client's
local evaluation: `api.set_provider(EventPlaneProvider(client))`. Imported only by who uses it.

The evaluation context maps to EventPlane's: `targeting_key` is the user_id (else the attribute
`user_id`), the attribute `anonymous_id` the anonymous id, every other attribute a targeting attribute
(datetimes as ISO-8601 strings)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from experimentation_sdk.client import ExperimentationClient
from experimentation_sdk.evaluation import FlagResult

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]
_KNOWN = {code.value: code for code in ErrorCode}


class EventPlaneProvider(AbstractProvider):
    def __init__(self, client: ExperimentationClient, *, ready_timeout: float = 5.0) -> None:
        super().__init__()
        self._client = client
        self._ready_timeout = ready_timeout

    def get_metadata(self) -> Metadata:
        return Metadata(name="EventPlane")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        # Not ready in time is fine: evaluations are answered remotely until the document arrives.
        self._client.wait_for_flags(self._ready_timeout)

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        result = self._evaluate(flag_key, default_value, evaluation_context)
        if result.reason != "ERROR" and not isinstance(result.value, bool):
            result = FlagResult(flag_key, result.enabled, result.enabled, result.reason, result.variant)
        return _details(result, default_value, lambda v: isinstance(v, bool))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        result = self._evaluate(flag_key, default_value, evaluation_context)
        return _details(result, default_value, lambda v: isinstance(v, str))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        result = self._evaluate(flag_key, default_value, evaluation_context)
        if isinstance(result.value, float) and result.value.is_integer():
            result = FlagResult(flag_key, result.enabled, int(result.value), result.reason, result.variant)
        return _details(result, default_value, lambda v: isinstance(v, int) and not isinstance(v, bool))

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        result = self._evaluate(flag_key, default_value, evaluation_context)
        if isinstance(result.value, int) and not isinstance(result.value, bool):
            result = FlagResult(flag_key, result.enabled, float(result.value), result.reason, result.variant)
        return _details(result, default_value, lambda v: isinstance(v, float))

    def resolve_object_details(
        self, flag_key: str, default_value: ObjectValue, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[ObjectValue]:
        result = self._evaluate(flag_key, default_value, evaluation_context)
        return _details(result, default_value, lambda v: isinstance(v, dict | list))

    def _evaluate(self, key: str, default: Any, context: EvaluationContext | None) -> FlagResult:
        attributes = {name: _plain(value) for name, value in (context.attributes if context else {}).items()}
        user_id = (context.targeting_key if context else None) or attributes.pop("user_id", None)
        anonymous_id = attributes.pop("anonymous_id", None)
        return self._client.flag_details(
            key, user_id=_text(user_id), anonymous_id=_text(anonymous_id), attributes=attributes, default=default
        )


def _details(result: FlagResult, default: T, fits: Any) -> FlagResolutionDetails[T]:
    if result.reason == "ERROR":
        code = _KNOWN.get(result.error_code or "", ErrorCode.GENERAL)
        return FlagResolutionDetails(default, code, result.error_code, Reason.ERROR)
    if not fits(result.value):
        message = f"the flag's value {result.value!r} is not a {type(default).__name__}"
        return FlagResolutionDetails(default, ErrorCode.TYPE_MISMATCH, message, Reason.ERROR)
    return FlagResolutionDetails(result.value, reason=result.reason, variant=result.variant)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
