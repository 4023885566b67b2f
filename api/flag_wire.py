"""Request and response types of feature flags, experiments, their audit log and results.

The shapes follow the contract (the SDK config document's fields). What no JSON Schema can say (weights
summing to 100, a value of the flag's type, an operator's value type, semver syntax) api/flag_rules.py
checks, with a 400 naming the field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field

from api.wire import NO_NUL, Description, Input, Name

# A flag, experiment, variant or value key; the slug rules of the contract.
EntityKey = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
# A percentage with at most 2 decimals (0.01 % is one bucket of 10,000); the decimals are checked in code.
Percent = Annotated[float, Meta(ge=0, le=100)]
Attribute = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
RuleId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
EventType = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Operator = Literal[
    "eq", "neq", "in", "not_in", "contains", "not_contains", "gt", "gte", "lt", "lte",
    "semver_eq", "semver_gt", "semver_gte", "semver_lt", "semver_lte",
]  # fmt: skip
Match = Literal["all", "any"]
ValueType = Literal["boolean", "string", "number", "object"]
Status = Literal["draft", "running", "stopped"]


class Condition(Input):
    attribute: Attribute
    operator: Operator
    value: Any


class Rule(Input):
    id: RuleId | UnsetType = UNSET  # "r1", "r2"... by position when left out
    match: Match = "all"
    conditions: Annotated[list[Condition], Meta(max_length=50)] = []
    rollout: Percent = 100
    value: Any | UnsetType = UNSET  # the rule's own value; else the flag's (variant) value


class FlagValue(Input):
    key: EntityKey
    value: Any
    weight: Percent


Rules = Annotated[list[Rule], Meta(max_length=100)]
Values = Annotated[list[FlagValue], Meta(max_length=100)]


class FlagIn(Input):
    key: EntityKey
    name: Name | UnsetType = UNSET  # the key when left out
    description: Description | None = None
    enabled: bool = False
    rollout: Percent = 100
    rules: Rules = []
    value_type: ValueType = "boolean"
    default_value: Any | UnsetType = UNSET  # false for boolean flags; required for the other types
    on_value: Any | UnsetType = UNSET  # true for boolean flags; else the first value's, or required
    values: Values = []


class FlagPatch(Input):
    """Only the fields given change. A key with the `flags:write` scope may send `rollout` and `enabled` only."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    rollout: Percent | UnsetType = UNSET
    rules: Rules | UnsetType = UNSET
    value_type: ValueType | UnsetType = UNSET
    default_value: Any | UnsetType = UNSET
    on_value: Any | UnsetType = UNSET
    values: Values | UnsetType = UNSET


class FlagOut(Struct, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    enabled: bool
    salt: str
    rollout: float
    rules: list[Any]
    value_type: str
    default_value: Any
    on_value: Any
    values: list[Any]
    created_at: dt.datetime
    updated_at: dt.datetime


# Experiments --------------------------------------------------------------------------------------------
class Variant(Input):
    key: EntityKey
    weight: Percent


class Targeting(Input):
    match: Match = "all"
    conditions: Annotated[list[Condition], Meta(max_length=50)] = []


class Conversion(Input):
    event_type: EventType
    # A numeric property summed per unit for the Welch t-test; "value" names the event's own `value` field.
    value_property: Attribute | None = None


class Namespace(Input):
    """A hash range of 10,000 buckets: experiments running in one namespace with disjoint ranges never
    share a unit."""

    name: Attribute
    start: Annotated[int, Meta(ge=0, le=9999)]
    end: Annotated[int, Meta(ge=1, le=10000)]


Variants = Annotated[list[Variant], Meta(min_length=2, max_length=20)]


class ExperimentIn(Input):
    key: EntityKey
    variants: Variants  # the first is the control
    conversion: Conversion
    name: Name | UnsetType = UNSET
    hypothesis: Description | None = None
    targeting: Targeting = field(default_factory=Targeting)
    allocation: Percent = 100
    namespace: Namespace | None = None


class ExperimentPatch(Input):
    """Only the fields given change; `status` moves draft -> running -> stopped only."""

    name: Name | UnsetType = UNSET
    hypothesis: Description | UnsetType | None = UNSET
    variants: Variants | UnsetType = UNSET
    targeting: Targeting | UnsetType = UNSET
    allocation: Percent | UnsetType = UNSET
    conversion: Conversion | UnsetType = UNSET
    namespace: Namespace | UnsetType | None = UNSET
    status: Status | UnsetType = UNSET


class ExperimentOut(Struct, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    hypothesis: str | None
    status: str
    salt: str
    bucket_version: int
    variants: list[Any]
    targeting: Any
    allocation: float
    conversion: Any
    namespace: Any
    sticky: str
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


# Audit log ----------------------------------------------------------------------------------------------
class AuditOut(Struct, kw_only=True):
    id: uuid.UUID
    action: str  # create, update, delete, status, rerandomize
    entity_type: str  # feature_flag, experiment
    entity_key: str
    actor_user_id: uuid.UUID | None
    actor_key_id: uuid.UUID | None
    before: Any
    after: Any
    at: dt.datetime


# Results ------------------------------------------------------------------------------------------------
class Interval(Struct, kw_only=True):
    low: float
    high: float


class MetricOut(Struct, kw_only=True):
    """The value metric of one variant: per exposed unit, the sum over its conversion events."""

    mean: float
    variance: float | None  # sample variance (n - 1); null below 2 units


class Comparison(Struct, kw_only=True):
    """Against the control: the difference of conversion rates (Wald interval, unpooled) and the
    two-proportion z-test (pooled), then Welch's t-test on the value metric when there is one."""

    rate_difference: float | None
    rate_difference_interval: Interval | None
    z: float | None
    p_value: float | None
    value_difference: float | None = None
    value_difference_interval: Interval | None = None  # Welch, 95 %
    welch_t: float | None = None
    welch_df: float | None = None
    welch_p_value: float | None = None


class VariantResult(Struct, kw_only=True):
    key: str
    weight: float
    exposed: int
    converted: int
    rate: float | None
    rate_interval: Interval | None  # Wilson score, 95 %
    value: MetricOut | None
    vs_control: Comparison | None  # null for the control


class SrmOut(Struct, kw_only=True):
    """Sample-ratio mismatch: chi-square of exposed units against the weights, flagged at p < 0.001."""

    chi_square: float | None
    df: int
    p_value: float | None
    mismatch: bool


class ResultsOut(Struct, kw_only=True):
    experiment: str
    status: str
    bucket_version: int
    conversion_event: str
    value_property: str | None
    confidence: float
    variants: list[VariantResult]
    srm: SrmOut
    computed_at: dt.datetime
