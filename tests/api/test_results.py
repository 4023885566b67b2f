"""Experiment results on a seeded data set, every figure compared with scipy computed here from the raw
events: exposed and converting units, Wilson intervals, the difference to control with its Wald interval
and z-test, Welch's t-test on the value metric, and the sample-ratio-mismatch check."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from scipy import stats

from eventplane.settings import Settings
from tests.api.conftest import Team, error_code, new_team
from tests.api.flag_support import experiments_url, key_headers, services
from tests.conftest import drain

T0 = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
COLUMNS = ("workspace_id", "message_id", "event_type", "user_id", "anonymous_id", "value", "properties", "timestamp",
           "received_at")  # fmt: skip
VARIANTS: list[dict[str, Any]] = [
    {"key": "control", "weight": 50},
    {"key": "b", "weight": 30},
    {"key": "c", "weight": 20},
]
REL = 1e-9


@dataclass
class Seed:
    """Raw events, and each unit's story as this test tells it (the answer, independent of the SQL)."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    first: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    conversions: dict[str, list[tuple[dt.datetime, float | None]]] = field(default_factory=dict)

    def event(self, ws: uuid.UUID, event_type: str, unit: str, at: dt.datetime, props: dict[str, Any],
              value: float | None = None) -> None:  # fmt: skip
        anonymous = unit.startswith("anon")
        self.rows.append((ws, uuid.uuid4().hex, event_type, None if anonymous else unit, unit if anonymous else None,
                          value, json.dumps(props), at, dt.datetime.now(dt.UTC)))  # fmt: skip

    def expose(self, ws: uuid.UUID, exp: str, unit: str, variant: str, at: dt.datetime, version: Any = 1) -> None:
        self.event(ws, "$exposure", unit, at, {"experiment": exp, "variant": variant, "bucket_version": version})
        counted = exp == "checkout" and version in (1, "1") and variant in {v["key"] for v in VARIANTS}
        if counted and (unit not in self.first or at < self.first[unit][1]):
            self.first[unit] = (variant, at)

    def convert(self, ws: uuid.UUID, unit: str, at: dt.datetime, amount: Any) -> None:
        self.event(ws, "purchase", unit, at, {"amount": amount} if amount is not None else {})
        numeric = isinstance(amount, int | float) and not isinstance(amount, bool)
        self.conversions.setdefault(unit, []).append((at, float(amount) if numeric else None))

    def per_variant(self) -> dict[str, tuple[list[bool], list[float]]]:
        out: dict[str, tuple[list[bool], list[float]]] = {v["key"]: ([], []) for v in VARIANTS}
        for unit, (variant, exposed_at) in self.first.items():
            after = [(at, amount) for at, amount in self.conversions.get(unit, []) if at >= exposed_at]
            out[variant][0].append(bool(after))
            out[variant][1].append(sum(amount or 0.0 for _, amount in after))
        return out


def seed(ws: uuid.UUID) -> Seed:
    rng = random.Random(20261201)
    s = Seed()
    rates = {"control": 0.10, "b": 0.16, "c": 0.08}
    for i in range(900):
        unit = f"anon-{i}" if i % 7 == 0 else f"u{i}"
        variant = rng.choices([v["key"] for v in VARIANTS], weights=[v["weight"] for v in VARIANTS])[0]
        at = T0 + dt.timedelta(seconds=rng.randrange(86_400))
        s.expose(ws, "checkout", unit, variant, at)
        if rng.random() < 0.2:  # a later exposure with another variant: the first one decides
            s.expose(ws, "checkout", unit, rng.choice(["control", "b", "c"]), at + dt.timedelta(minutes=5))
        if rng.random() < 0.1:  # before the exposure: never counts
            s.convert(ws, unit, at - dt.timedelta(minutes=1), 99.0)
        if rng.random() < rates[variant]:
            s.convert(ws, unit, at if i % 5 == 0 else at + dt.timedelta(minutes=rng.randrange(1, 600)),
                      round(rng.lognormvariate(3, 1), 2))  # fmt: skip
            if rng.random() < 0.3:  # a second purchase adds to the unit's value; a text amount adds nothing
                s.convert(ws, unit, at + dt.timedelta(hours=20), rng.choice([12.5, "12.5", None, 7]))
    for i in range(50):  # noise: never exposed, other experiments, other bucket versions, unknown variants
        s.convert(ws, f"stranger{i}", T0, 10.0)
        s.expose(ws, "other", f"u{i}", "control", T0)
        s.expose(ws, "checkout", f"v2-{i}", "b", T0, version=2)
        s.expose(ws, "checkout", f"odd-{i}", "zzz", T0)
    return s


async def _create(api: httpx.AsyncClient, team: Team, **extra: Any) -> None:
    conversion = {"event_type": "purchase", "value_property": "amount"}
    body = {"key": "checkout", "variants": VARIANTS, "conversion": conversion, **extra}
    r = await api.post(experiments_url(team.workspace_id), json=body, headers=team.owner.headers)
    assert r.status_code == 201, r.text


async def _results(api: httpx.AsyncClient, team: Team, headers: dict[str, str] | None = None,
                   **params: Any) -> dict[str, Any]:  # fmt: skip
    r = await api.get(experiments_url(team.workspace_id, "checkout", "results"), params=params,
                      headers=headers or team.viewer.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def close(got: float | None, want: float) -> bool:
    return got is not None and math.isclose(got, want, rel_tol=REL, abs_tol=1e-12)


async def test_results_match_scipy(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    await _create(api, team)
    ws = uuid.UUID(team.workspace_id)
    data = seed(ws)
    await services(api).pool.copy_records_to_table("events", records=data.rows, columns=COLUMNS)
    got = await _results(api, team)
    assert (got["experiment"], got["bucket_version"], got["confidence"]) == ("checkout", 1, 0.95)
    expected = data.per_variant()
    control_conv, control_vals = expected["control"]
    z = stats.norm.ppf(0.975)
    for v in got["variants"]:
        converted, values = expected[v["key"]]
        n, x = len(converted), sum(converted)
        assert (v["exposed"], v["converted"]) == (n, x)
        assert close(v["rate"], x / n)
        ci = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert close(v["rate_interval"]["low"], ci.low) and close(v["rate_interval"]["high"], ci.high)
        assert close(v["value"]["mean"], sum(values) / n)
        assert close(v["value"]["variance"], stats.tvar(values))
        if v["key"] == "control":
            assert v["vs_control"] is None
            continue
        cmp = v["vs_control"]
        n0, x0 = len(control_conv), sum(control_conv)
        p1, p0 = x / n, x0 / n0
        se = math.sqrt(p1 * (1 - p1) / n + p0 * (1 - p0) / n0)
        assert close(cmp["rate_difference"], p1 - p0)
        assert close(cmp["rate_difference_interval"]["low"], p1 - p0 - z * se)
        assert close(cmp["rate_difference_interval"]["high"], p1 - p0 + z * se)
        pooled = (x + x0) / (n + n0)
        z_stat = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n0))
        assert close(cmp["z"], z_stat)
        assert close(cmp["p_value"], 2 * stats.norm.sf(abs(z_stat)))
        welch = stats.ttest_ind(values, control_vals, equal_var=False)
        assert close(cmp["value_difference"], sum(values) / n - sum(control_vals) / n0)
        assert close(cmp["welch_t"], welch.statistic) and close(cmp["welch_p_value"], welch.pvalue)
        assert close(cmp["welch_df"], welch.df)
        interval = welch.confidence_interval(0.95)
        assert math.isclose(cmp["value_difference_interval"]["low"], interval.low, rel_tol=1e-8)
        assert math.isclose(cmp["value_difference_interval"]["high"], interval.high, rel_tol=1e-8)
    observed = [len(expected[v["key"]][0]) for v in VARIANTS]
    chi = stats.chisquare(observed, [sum(observed) * v["weight"] / 100 for v in VARIANTS])
    srm = got["srm"]
    assert close(srm["chi_square"], chi.statistic) and close(srm["p_value"], chi.pvalue)
    assert chi.pvalue > 0.001 and (srm["df"], srm["mismatch"]) == (2, False)

    # Keys with `read` see results too; the other bucket version has its own (here: b only).
    reader = await key_headers(api, team, ["read"])
    assert (await _results(api, team, reader))["variants"] == got["variants"]
    r = await api.get(experiments_url(team.workspace_id, "checkout", "results"), params={"bucket_version": 2},
                      headers=reader)  # fmt: skip
    assert (r.status_code, error_code(r)) == (400, "VALIDATION_ERROR")  # version 2 does not exist yet
    await api.post(experiments_url(team.workspace_id, "checkout", "rerandomize"), headers=team.owner.headers)
    v2 = await _results(api, team)
    assert v2["bucket_version"] == 2 and [v["exposed"] for v in v2["variants"]] == [0, 50, 0]
    assert (await _results(api, team, bucket_version=1))["variants"] == got["variants"]


async def test_sample_ratio_mismatch_is_flagged(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    await _create(api, team)
    ws = uuid.UUID(team.workspace_id)
    data = Seed()
    for i, variant in enumerate(["control"] * 560 + ["b"] * 300 + ["c"] * 140):
        data.expose(ws, "checkout", f"u{i}", variant, T0)
    await services(api).pool.copy_records_to_table("events", records=data.rows, columns=COLUMNS)
    srm = (await _results(api, team))["srm"]
    chi = stats.chisquare([560, 300, 140], [500, 300, 200])
    assert chi.pvalue < 0.001 and srm["mismatch"] is True
    assert close(srm["chi_square"], chi.statistic) and close(srm["p_value"], chi.pvalue)


async def test_no_exposures_yet(api: httpx.AsyncClient) -> None:
    team = await new_team(api)
    await _create(api, team, conversion={"event_type": "purchase"})
    got = await _results(api, team)
    assert [(v["exposed"], v["converted"], v["rate"], v["rate_interval"], v["value"]) for v in got["variants"]] == [
        (0, 0, None, None, None)] * 3  # fmt: skip
    assert got["variants"][1]["vs_control"] == {"rate_difference": None, "rate_difference_interval": None, "z": None,
        "p_value": None, "value_difference": None, "value_difference_interval": None, "welch_t": None,
        "welch_df": None, "welch_p_value": None}  # fmt: skip
    assert got["srm"] == {"chi_square": None, "df": 2, "p_value": None, "mismatch": False}
    r = await api.get(experiments_url(team.workspace_id, "nope", "results"), headers=team.viewer.headers)
    assert (r.status_code, error_code(r)) == (404, "NOT_FOUND")
    tracker = await key_headers(api, team, ["track:write"])
    r = await api.get(experiments_url(team.workspace_id, "checkout", "results"), headers=tracker)
    assert (r.status_code, error_code(r)) == (403, "INSUFFICIENT_SCOPE")


@pytest.mark.parametrize("value_property", ["value", None])
async def test_through_the_pipeline(
    api: httpx.AsyncClient, edge: httpx.AsyncClient, api_settings: Settings, value_property: str | None
) -> None:
    """Events sent to the edge and stored by a worker; `value_property: "value"` sums the events' own value."""
    team = await new_team(api)
    await _create(api, team, conversion={"event_type": "purchase", "value_property": value_property})
    tracker = await key_headers(api, team, ["track:write"])
    t = T0.isoformat()
    later = (T0 + dt.timedelta(hours=1)).isoformat()
    events = [
        {"event_type": "$exposure", "user_id": "ann", "timestamp": t,
         "properties": {"experiment": "checkout", "variant": "control", "bucket_version": 1}},
        {"event_type": "$exposure", "anonymous_id": "bob", "timestamp": t,
         "properties": {"experiment": "checkout", "variant": "b", "bucket_version": 1}},
        {"event_type": "purchase", "user_id": "ann", "timestamp": later, "value": 30},
        {"event_type": "purchase", "user_id": "ann", "timestamp": later, "value": 12.5},
        {"event_type": "purchase", "anonymous_id": "bob", "timestamp": (T0 - dt.timedelta(hours=1)).isoformat(),
         "value": 99},
    ]  # fmt: skip
    r = await edge.post("/api/v1/tracking/batch", json={"events": events}, headers=tracker)
    assert r.status_code == 202, r.text
    await drain(api_settings)
    got = await _results(api, team)
    summary = [(v["key"], v["exposed"], v["converted"], v["value"]) for v in got["variants"]]
    metric = value_property is not None
    assert summary == [("control", 1, 1, {"mean": 42.5, "variance": None} if metric else None),
                       ("b", 1, 0, {"mean": 0.0, "variance": None} if metric else None), ("c", 0, 0, None)]  # fmt: skip
