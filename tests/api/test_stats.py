"""The pure statistics of results against scipy, over wide grids (including far tails)."""

from __future__ import annotations

import math

import pytest
from scipy import special, stats

from api import stats as ours


@pytest.mark.parametrize("df", [1, 2, 3, 4.5, 10, 29.7, 100, 1000, 1e6])
@pytest.mark.parametrize("t", [0.0, 0.01, 0.5, 1.0, 1.96, 2.5, 4.0, 10.0, 40.0])
def test_t_distribution(t: float, df: float) -> None:
    assert math.isclose(ours.t_two_sided_p(t, df), 2 * stats.t.sf(t, df), rel_tol=1e-9)
    assert math.isclose(ours.t_cdf(-t, df), stats.t.cdf(-t, df), rel_tol=1e-9)
    assert math.isclose(ours.t_cdf(t, df), stats.t.cdf(t, df), rel_tol=1e-12)


@pytest.mark.parametrize("df", [1, 2, 5, 30, 1e4])
def test_t_quantile(df: float) -> None:
    assert math.isclose(ours.t_quantile_975(df), stats.t.ppf(0.975, df), rel_tol=1e-9)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 19, 50])
@pytest.mark.parametrize("x", [0.0, 0.001, 0.5, 1.0, 3.0, 10.0, 40.0, 150.0, 600.0])
def test_chi_square_survival(x: float, k: int) -> None:
    assert math.isclose(ours.chi2_sf(x, k), stats.chi2.sf(x, k), rel_tol=1e-10, abs_tol=1e-300)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (1, 1), (2.5, 7), (50, 0.5), (300, 400)])
@pytest.mark.parametrize("x", [0.0, 1e-6, 0.1, 0.42, 0.5, 0.9, 1 - 1e-9, 1.0])
def test_incomplete_beta(a: float, b: float, x: float) -> None:
    assert math.isclose(ours.betainc(a, b, x), special.betainc(a, b, x), rel_tol=1e-10, abs_tol=1e-300)


@pytest.mark.parametrize("z", [0.0, 1.0, 1.96, 3.0, 8.0, 30.0])
def test_normal(z: float) -> None:
    assert math.isclose(ours.normal_cdf(-z), stats.norm.cdf(-z), rel_tol=1e-12)
    assert math.isclose(ours.normal_two_sided_p(z), 2 * stats.norm.sf(z), rel_tol=1e-12)
    assert math.isclose(ours.Z95, stats.norm.ppf(0.975), rel_tol=1e-15)


def test_degenerate_inputs() -> None:
    assert ours.wilson(0, 0) is None and ours.two_proportions(0, 0, 1, 2) is None
    assert ours.two_proportions(0, 10, 0, 10) == ours.Proportions(0.0, (0.0, 0.0), None, None)
    assert ours.welch(1.0, 0.0, 5, 1.0, 0.0, 5) is None and ours.welch(1.0, 1.0, 1, 2.0, 1.0, 5) is None
    assert ours.srm([0, 0], [50, 50]) == ours.Srm(None, 1, None, False)
    assert ours.srm([3, 1], [100, 0]) == ours.Srm(None, 0, None, False)  # one variant with weight: nothing to test
    assert ours.srm([3, 1, 0], [50, 50, 0]).mismatch is False
    assert ours.srm([3, 1, 1], [50, 50, 0]) == ours.Srm(None, 1, 0.0, True)
