"""An experiment's results, computed in SQL over `events` and finished in api/stats.py.

A unit (user_id, else anonymous_id) is exposed from its first `$exposure` event of the experiment at the
bucket version asked for (the current one by default); its variant is that event's. It converted when it
sent an event of the conversion type at or after that moment. Only events received since the experiment
was created count, so a deleted and re-created key starts afresh.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from api import permissions as p
from api import stats
from api.errors import not_found
from api.flag_access import actor, path_key
from api.flag_wire import Comparison, Interval, MetricOut, ResultsOut, SrmOut, VariantResult
from api.rest import path_uuid, query_int, reply
from api.routing import Endpoint
from api.state import services

EXPOSURE = "$exposure"

# $1 workspace, $2 experiment key, $3 bucket version, $4 variant keys, $5 received since,
# $6 conversion event type, $7 value property (NULL: none; 'value': the event's own `value`).
_RESULTS = """
WITH exposures AS (
    SELECT DISTINCT ON (unit) unit, variant, at
    FROM (
        SELECT coalesce(user_id, anonymous_id) AS unit, properties ->> 'variant' AS variant, "timestamp" AS at,
               received_at, message_id
        FROM events
        WHERE workspace_id = $1 AND event_type = '$exposure' AND received_at >= $5
          AND properties ->> 'experiment' = $2
          AND properties -> 'bucket_version' IN (to_jsonb($3::int), to_jsonb($3::text))
          AND properties ->> 'variant' = ANY($4::text[])
    ) e
    WHERE unit IS NOT NULL
    ORDER BY unit, at, received_at, message_id
),
conversions AS (
    SELECT coalesce(user_id, anonymous_id) AS unit, "timestamp" AS at,
           CASE WHEN $7::text IS NULL THEN NULL
                WHEN $7 = 'value' THEN value::numeric
                WHEN jsonb_typeof(properties -> $7) = 'number' THEN (properties -> $7)::numeric
           END AS metric
    FROM events
    WHERE workspace_id = $1 AND event_type = $6 AND received_at >= $5
),
per_unit AS (
    SELECT x.unit, x.variant, count(c.unit) AS conversions, coalesce(sum(c.metric), 0) AS metric
    FROM exposures x LEFT JOIN conversions c ON c.unit = x.unit AND c.at >= x.at
    GROUP BY x.unit, x.variant
)
SELECT variant, count(*) AS exposed, count(*) FILTER (WHERE conversions > 0) AS converted,
       avg(metric) AS mean, var_samp(metric) AS variance
FROM per_unit GROUP BY variant
"""


def _float(value: Decimal | float | None) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _interval(pair: tuple[float, float] | None) -> Interval | None:
    return None if pair is None else Interval(low=pair[0], high=pair[1])


def _variant(key: str, weight: float, row: Any, metric: bool) -> VariantResult:
    exposed = row["exposed"] if row else 0
    converted = row["converted"] if row else 0
    value = None
    if metric and exposed:
        value = MetricOut(mean=_float(row["mean"]) or 0.0, variance=_float(row["variance"]))
    return VariantResult(key=key, weight=weight, exposed=exposed, converted=converted,
                         rate=converted / exposed if exposed else None,
                         rate_interval=_interval(stats.wilson(converted, exposed)), value=value,
                         vs_control=None)  # fmt: skip


def _compare(control: VariantResult, v: VariantResult) -> Comparison:
    props = stats.two_proportions(control.converted, control.exposed, v.converted, v.exposed)
    if props is None:
        out = Comparison(rate_difference=None, rate_difference_interval=None, z=None, p_value=None)
    else:
        out = Comparison(rate_difference=props.difference, rate_difference_interval=_interval(props.interval),
                         z=props.z, p_value=props.p_value)  # fmt: skip
    if control.value is not None and v.value is not None:
        out.value_difference = v.value.mean - control.value.mean
        w = stats.welch(control.value.mean, control.value.variance or 0.0, control.exposed, v.value.mean,
                        v.value.variance or 0.0, v.exposed)  # fmt: skip
        if w is not None:
            out.value_difference_interval = _interval(w.interval)
            out.welch_t, out.welch_df, out.welch_p_value = w.t, w.df, w.p_value
    return out


async def results(request: Request) -> Response:
    workspace_id = path_uuid(request, "workspace_id")
    await actor(request, workspace_id, p.EXPERIMENTS_READ)
    pool = services(request).pool
    exp = await pool.fetchrow(
        "SELECT key, status, bucket_version, variants::text AS variants, conversion_event, value_property, created_at "
        "FROM experiments WHERE workspace_id = $1 AND key = $2",
        workspace_id,
        path_key(request, "experiment_key", "experiment"),
    )
    if exp is None:
        raise not_found("experiment")
    version = query_int(request, "bucket_version", exp["bucket_version"], 1, exp["bucket_version"])
    variants: list[dict[str, Any]] = msgspec.json.decode(exp["variants"])
    keys = [v["key"] for v in variants]
    events = await services(request).data.pool(workspace_id)  # the experiment is the hub's, its events the instance's
    rows = await events.fetch(_RESULTS, workspace_id, exp["key"], version, keys, exp["created_at"],
                            exp["conversion_event"], exp["value_property"])  # fmt: skip
    by_key = {r["variant"]: r for r in rows}
    metric = exp["value_property"] is not None
    out = [_variant(v["key"], float(v["weight"]), by_key.get(v["key"]), metric) for v in variants]
    for v in out[1:]:
        v.vs_control = _compare(out[0], v)
    srm = stats.srm([v.exposed for v in out], [v.weight for v in out])
    return reply(ResultsOut(experiment=exp["key"], status=exp["status"], bucket_version=version,
                            conversion_event=exp["conversion_event"], value_property=exp["value_property"],
                            confidence=0.95, variants=out,
                            srm=SrmOut(chi_square=srm.chi_square, df=srm.df, p_value=srm.p_value,
                                       mismatch=srm.mismatch),
                            computed_at=dt.datetime.now(dt.UTC)))  # fmt: skip


ENDPOINTS = [
    Endpoint("GET", "/api/v1/workspaces/{workspace_id:uuid}/experiments/{experiment_key}/results", results,
             "An experiment's results: rates, intervals, tests and the sample-ratio check", None, ResultsOut,
             auth="session_or_key", query=("bucket_version",), errors=(400, 401, 403, 404)),
]  # fmt: skip
