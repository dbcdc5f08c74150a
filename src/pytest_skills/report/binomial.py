"""Binomial building blocks: the Wilson interval, the exact McNemar test, normal quantiles.

Pure standard library, so the plugin never needs scipy at run time; ``tests/test_stats.py``
checks every function here against statsmodels and scipy.

References:
    E. B. Wilson (1927). Probable inference, the law of succession, and statistical
    inference. JASA 22:209-212.
    Q. McNemar (1947). Note on the sampling error of the difference between correlated
    proportions or percentages. Psychometrika 12:153-157.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "Z95",
    "Proportion",
    "clip",
    "mcnemar_exact",
    "normal_cdf",
    "normal_quantile",
    "proportion",
    "wilson_cc_interval",
    "wilson_interval",
]

#: Two-sided 95% standard-normal quantile, ``Phi^-1(0.975)`` (same value as
#: ``scipy.stats.norm.isf(0.025)``).
Z95 = 1.959963984540054

_NORMAL = NormalDist()


def normal_quantile(q: float) -> float:
    """``Phi^-1(q)`` of the standard normal distribution, for ``0 < q < 1``."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"a normal quantile needs 0 < q < 1, got {q}")
    return _NORMAL.inv_cdf(q)


def normal_cdf(x: float) -> float:
    """``Phi(x)`` of the standard normal distribution."""
    return _NORMAL.cdf(x)


def clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


@dataclass(frozen=True)
class Proportion:
    """A pass count with its rate and Wilson 95% interval.

    ``rate`` and ``ci`` are ``None`` when nothing was measured (``total == 0``):
    an empty condition has no rate, and reporting 0% would be a claim.
    """

    passed: int
    total: int
    rate: float | None
    ci: tuple[float, float] | None


def _check_count(passed: float, total: float) -> None:
    if passed < 0 or total < 0 or passed > total:
        raise ValueError(f"need 0 <= passed <= total, got passed={passed}, total={total}")


def wilson_interval(passed: float, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927) score interval for a binomial proportion.

    Why Wilson: it inverts the score test, so it is never zero-width at 0/n or n/n
    (where the Wald interval claims certainty from a handful of runs), stays inside
    [0, 1], and its coverage is close to nominal even for n of 10-20. It is the
    interval Newcombe's method 10 is built from.

    ``passed`` may be fractional (a sum of per-case pass shares, see
    :mod:`pytest_skills.report.paired`): the formula only needs the observed rate and n.
    The ends are exactly 0 at ``passed == 0`` and exactly 1 at ``passed == total``.
    With ``total == 0`` nothing is known and the interval is the whole range (0, 1).
    """
    _check_count(passed, total)
    if not z > 0:
        raise ValueError(f"z must be positive, got {z}")
    if total == 0:
        return (0.0, 1.0)
    n = float(total)
    p = passed / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1.0 - p)) / n + z2 / (4.0 * n * n)) / denom
    low = 0.0 if passed == 0 else clip(centre - half, 0.0, 1.0)
    high = 1.0 if passed == total else clip(centre + half, 0.0, 1.0)
    return (low, high)


def wilson_cc_interval(passed: float, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval with Yates' continuity correction (Newcombe 1998a, method 4).

    The set of rates ``p`` with ``|passed - n p| - 1/2 <= z sqrt(n p (1 - p))``: the
    half-count correction widens each end by about ``1/(2n)``, which keeps the coverage
    at or above nominal for the small n where the plain score interval dips below it.
    Same conventions as :func:`wilson_interval`.
    """
    _check_count(passed, total)
    if not z > 0:
        raise ValueError(f"z must be positive, got {z}")
    if total == 0:
        return (0.0, 1.0)
    n = float(total)
    p = passed / n
    z2 = z * z
    denom = 2.0 * (n + z2)
    low = 0.0
    if passed > 0:
        root = z2 - 2.0 - 1.0 / n + 4.0 * p * (n * (1.0 - p) + 1.0)
        low = clip((2.0 * n * p + z2 - 1.0 - z * math.sqrt(max(0.0, root))) / denom, 0.0, 1.0)
    high = 1.0
    if passed < total:
        root = z2 + 2.0 - 1.0 / n + 4.0 * p * (n * (1.0 - p) - 1.0)
        high = clip((2.0 * n * p + z2 + 1.0 + z * math.sqrt(max(0.0, root))) / denom, 0.0, 1.0)
    return (low, high)


def proportion(passed: int, total: int) -> Proportion:
    """Pass rate with its Wilson 95% interval; rate and interval are None for 0 runs."""
    _check_count(passed, total)
    if total == 0:
        return Proportion(passed=passed, total=total, rate=None, ci=None)
    return Proportion(
        passed=passed, total=total, rate=passed / total, ci=wilson_interval(passed, total)
    )


def mcnemar_exact(with_only: int, baseline_only: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pair counts.

    Under "the skill makes no difference" each discordant case is equally likely to
    favour either condition, so ``b`` given ``b + c`` is Binomial(b + c, 1/2). The
    concordant cases carry no information about the difference and are ignored.
    Two-sided p = min(1, 2 * P(X <= min(b, c))), the same as
    ``statsmodels ... mcnemar(table, exact=True)`` and, because the null is
    symmetric, as ``scipy.stats.binomtest``. With no discordant pairs p = 1.

    The tail is summed in exact integer arithmetic and divided once, so large counts
    neither overflow nor lose precision.
    """
    if with_only < 0 or baseline_only < 0:
        raise ValueError(f"counts must be >= 0, got {with_only}, {baseline_only}")
    n = with_only + baseline_only
    if n == 0:
        return 1.0
    k = min(with_only, baseline_only)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, (2 * tail) / (1 << n))
