"""The statistics of experiment results, pure and without scipy (tests compare every figure with scipy).

- Conversion rate: a 95 % Wilson score interval (it stays inside [0, 1] and behaves at small counts).
- Difference of rates to the control: a Wald interval (unpooled standard error) and the two-sided
  two-proportion z-test (pooled standard error under the null hypothesis).
- Value metric: Welch's t-test, the t distribution through the regularized incomplete beta function.
- Sample-ratio mismatch: Pearson's chi-square against the weights; its survival function through the
  regularized upper incomplete gamma function.
The incomplete beta and gamma are evaluated by their continued fractions (modified Lentz) or power series,
to a relative accuracy near 1e-14.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the normal distribution's 97.5th percentile
_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 10_000


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), converging fast for x < (a + 1) / (a + b + 2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # fmt: skip
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def _stirling_tail(z: float) -> float:
    """ln Gamma(z) minus its leading Stirling terms, for z >= 100 (the series' next term is below 1e-17)."""
    return 1 / (12 * z) - 1 / (360 * z**3) + 1 / (1260 * z**5)


def _log_beta(a: float, b: float) -> float:
    """ln B(a, b). When one argument is large, lgamma(a + b) - lgamma(a) would cancel most of its digits
    (the t distribution at a million degrees of freedom): Stirling's series gives the difference directly."""
    big, small = max(a, b), min(a, b)
    if big < 100:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    # ln Gamma(big + small) - ln Gamma(big), from (z - 1/2) ln z - z + ln(2 pi) / 2 + tail(z) at both points
    ratio = ((big - 0.5) * math.log1p(small / big) + small * math.log(big + small) - small
             + _stirling_tail(big + small) - _stirling_tail(big))  # fmt: skip
    return math.lgamma(small) - ratio


def betainc(a: float, b: float, x: float, y: float | None = None) -> float:
    """The regularized incomplete beta function I_x(a, b); `y` is 1 - x when the caller knows it more
    precisely than 1 - x computes it (x near 1)."""
    y = 1.0 - x if y is None else y
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    log_x = math.log1p(-y) if y < 0.5 else math.log(x)
    log_y = math.log1p(-x) if x < 0.5 else math.log(y)
    log_front = -_log_beta(a, b) + a * log_x + b * log_y
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    t2 = t * t
    return betainc(df / 2, 0.5, df / (df + t2), t2 / (df + t2))


def t_cdf(t: float, df: float) -> float:
    tail = t_two_sided_p(t, df) / 2
    return 1.0 - tail if t >= 0 else tail


def t_quantile_975(df: float) -> float:
    """The t distribution's 97.5th percentile, by bisection of its two-sided p-value (0.05)."""
    lo, hi = 0.0, 1e7
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > 0.05 else (lo, mid)
    return (lo + hi) / 2


def gammaincc(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x)."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:  # the series of P(a, x); Q is not small here, so 1 - P loses nothing
        term = total = 1.0 / a
        for n in range(1, _MAX_TERMS):
            term *= x / (a + n)
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return 1.0 - math.exp(log_front) * total
    b = x + 1.0 - a
    c, d = 1.0 / _TINY, 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        numerator = -i * (i - a)
        b += 2.0
        d = numerator * d + b
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = b + numerator / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return math.exp(log_front) * h


def chi2_sf(x: float, df: int) -> float:
    return gammaincc(df / 2, x / 2)


# The tests ---------------------------------------------------------------------------------------------
def wilson(converted: int, exposed: int, z: float = Z95) -> tuple[float, float] | None:
    if exposed == 0:
        return None
    p, n = converted / exposed, exposed
    scale = 1 + z * z / n
    center = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class Proportions:
    difference: float
    interval: tuple[float, float]
    z: float | None
    p_value: float | None


def two_proportions(x_control: int, n_control: int, x: int, n: int, z_crit: float = Z95) -> Proportions | None:
    """The variant's rate minus the control's."""
    if n == 0 or n_control == 0:
        return None
    p1, p0 = x / n, x_control / n_control
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / n + p0 * (1 - p0) / n_control)
    pooled = (x + x_control) / (n + n_control)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_control))
    z = diff / se0 if se0 > 0 else None
    return Proportions(diff, (diff - z_crit * se, diff + z_crit * se), z,
                       None if z is None else normal_two_sided_p(z))  # fmt: skip


@dataclass(frozen=True)
class Welch:
    difference: float
    interval: tuple[float, float]
    t: float
    df: float
    p_value: float


def welch(mean0: float, var0: float, n0: int, mean1: float, var1: float, n1: int) -> Welch | None:
    """Welch's unequal-variances t-test of mean1 - mean0; None without two units per side or any variance."""
    if n0 < 2 or n1 < 2:
        return None
    s0, s1 = var0 / n0, var1 / n1
    se2 = s0 + s1
    if se2 <= 0:
        return None
    diff = mean1 - mean0
    t = diff / math.sqrt(se2)
    df = se2 * se2 / (s0 * s0 / (n0 - 1) + s1 * s1 / (n1 - 1))
    half = t_quantile_975(df) * math.sqrt(se2)
    return Welch(diff, (diff - half, diff + half), t, df, t_two_sided_p(t, df))


@dataclass(frozen=True)
class Srm:
    chi_square: float | None
    df: int
    p_value: float | None
    mismatch: bool


SRM_ALPHA = 0.001


def srm(observed: list[int], weights: list[float]) -> Srm:
    """Exposed units per variant against the share their weights promise."""
    total = sum(observed)
    df = sum(1 for w in weights if w > 0) - 1
    if total == 0 or df < 1:
        return Srm(None, max(df, 0), None, False)
    if any(o > 0 and w <= 0 for o, w in zip(observed, weights, strict=True)):
        return Srm(None, df, 0.0, True)  # units in a variant of weight 0: a mismatch whatever the rest
    weight_sum = sum(weights)
    chi = sum((o - total * w / weight_sum) ** 2 / (total * w / weight_sum)
              for o, w in zip(observed, weights, strict=True) if w > 0)  # fmt: skip
    p = chi2_sf(chi, df)
    return Srm(chi, df, p, p < SRM_ALPHA)
