"""Small-sample statistics for skill evaluations, in pure Python.

Skill suites are small: a few dozen cases, often fewer, and pass rates near 0 or 1
are common. The textbook Wald formulas (``p ± z·sqrt(p(1-p)/n)``) collapse to
zero width at 0/n and n/n and overshoot [0, 1], so every interval here is a score
interval instead:

* a single pass rate gets the Wilson (1927) score interval;
* the lift (with-skill rate minus baseline rate on the *same* cases) gets
  Newcombe's (1998) method 10 interval for a difference of paired proportions,
  which is built from the two Wilson intervals and the correlation between the
  two conditions, so it stays inside [-1, 1] and is not degenerate when no case
  disagrees;
* with several trials per case, a seeded percentile bootstrap over cases;
* the p-value is the exact McNemar test, which only looks at the cases on which
  the two conditions disagree - the only cases that carry information about a
  difference.

Only the standard library is used (the plugin must not pull in scipy/numpy at run
time); ``tests/test_stats.py`` checks these functions against statsmodels/scipy and
against the published numbers of Newcombe (1998).

References:
    E. B. Wilson (1927). Probable inference, the law of succession, and statistical
    inference. JASA 22:209-212.
    R. G. Newcombe (1998). Improved confidence intervals for the difference between
    binomial proportions based on paired data. Statistics in Medicine 17:2635-2650.
    Q. McNemar (1947). Note on the sampling error of the difference between
    correlated proportions or percentages. Psychometrika 12:153-157.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Z95",
    "Lift",
    "Proportion",
    "bootstrap_lift",
    "mcnemar_exact",
    "paired_lift",
    "proportion",
    "relative_change",
    "wilson_interval",
]

#: Two-sided 95% standard-normal quantile, ``Phi^-1(0.975)`` (same value as
#: ``scipy.stats.norm.isf(0.025)``).
Z95 = 1.959963984540054


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


@dataclass(frozen=True)
class Lift:
    """The effect of a skill: with-skill rate minus baseline rate, paired by case.

    Attributes:
        lift: difference of the two rates as a fraction in [-1, 1] (not points);
            ``None`` when there are no cases.
        ci: 95% interval for the paired difference, clipped to [-1, 1].
        p_value: exact two-sided McNemar p-value (see :func:`paired_lift` and
            :func:`bootstrap_lift` for which cases count as discordant).
        method: ``"newcombe10"`` (one trial per case), ``"bootstrap"`` (several
            trials per case) or ``"none"`` (no data).
        cases: number of paired cases.
        discordant: ``(with-skill-only passes, baseline-only passes)``.
        verdict: ``"improves"`` / ``"hurts"`` when the whole interval lies strictly
            above / below zero, ``"inconclusive"`` when it touches or spans zero,
            ``"no data"`` without cases.
    """

    lift: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    method: str
    cases: int
    discordant: tuple[int, int]
    verdict: str


_NO_DATA = Lift(
    lift=None, ci=None, p_value=None, method="none", cases=0, discordant=(0, 0), verdict="no data"
)


def _check_count(passed: int, total: int) -> None:
    if passed < 0 or total < 0 or passed > total:
        raise ValueError(f"need 0 <= passed <= total, got passed={passed}, total={total}")


def _clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def wilson_interval(passed: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927) score interval for a binomial proportion.

    Why Wilson: it inverts the score test, so it is never zero-width at 0/n or n/n
    (where the Wald interval claims certainty from a handful of runs), stays inside
    [0, 1], and its coverage is close to nominal even for n of 10-20. It is the
    interval Newcombe's method 10 is built from.

    The ends are exactly 0 at ``passed == 0`` and exactly 1 at ``passed == total``
    (the algebra gives that; rounding could give 1e-17 either side). With
    ``total == 0`` nothing is known and the interval is the whole range (0, 1).
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
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low = 0.0 if passed == 0 else _clip(centre - half, 0.0, 1.0)
    high = 1.0 if passed == total else _clip(centre + half, 0.0, 1.0)
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
    symmetric, as ``scipy.stats.binomtest``. With no discordant pairs there is no
    evidence at all and p = 1.

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


def _verdict(ci: tuple[float, float]) -> str:
    # Conclusive only when the whole interval lies strictly on one side of zero: an
    # interval that ends exactly at 0 does not exclude "no effect".
    low, high = ci
    if low > 0.0:
        return "improves"
    if high < 0.0:
        return "hurts"
    return "inconclusive"


def _newcombe10(
    both: int, with_only: int, baseline_only: int, neither: int, z: float = Z95
) -> tuple[float, float, float]:
    """Newcombe (1998) method 10 for ``p1 - p2`` from a paired 2x2 table.

    Cells follow Newcombe's e, f, g, h: ``both`` (+,+), ``with_only`` (+,-),
    ``baseline_only`` (-,+), ``neither`` (-,-); p1 is the with-skill rate.
    Returns ``(difference, lower, upper)``, clipped to [-1, 1].
    """
    n = both + with_only + baseline_only + neither
    x1 = both + with_only  # with-skill passes
    x2 = both + baseline_only  # baseline passes
    p1, p2 = x1 / n, x2 / n
    diff = p1 - p2
    l1, u1 = wilson_interval(x1, n, z)
    l2, u2 = wilson_interval(x2, n, z)

    # The two rates are measured on the same cases, so their errors are correlated;
    # method 10 accounts for that with the phi coefficient of the 2x2 table. As in
    # Newcombe's paper, a positive AD - BC is first reduced by n/2 (and floored at 0)
    # before dividing: this is what reproduces his published method-10 intervals
    # (Table II; see tests/test_stats.py). Here "no continuity correction" refers to
    # the Wilson intervals (method 11 would use continuity-corrected ones). A zero
    # margin makes phi undefined; 0 is then the neutral choice (it reduces method 10
    # to Newcombe's interval for independent samples).
    denom = x1 * (n - x1) * x2 * (n - x2)
    if denom == 0:
        phi = 0.0
    else:
        cross = both * neither - with_only * baseline_only
        if cross > 0:
            cross = max(cross - n / 2.0, 0.0)
        phi = cross / math.sqrt(denom)

    dl1, du1 = p1 - l1, u1 - p1
    dl2, du2 = p2 - l2, u2 - p2
    # |phi| <= 1 makes both radicands >= (a - b)^2 >= 0; max() only absorbs rounding.
    lower = diff - math.sqrt(max(0.0, dl1 * dl1 - 2.0 * phi * dl1 * du2 + du2 * du2))
    upper = diff + math.sqrt(max(0.0, dl2 * dl2 - 2.0 * phi * dl2 * du1 + du1 * du1))
    return diff, _clip(lower, -1.0, 1.0), _clip(upper, -1.0, 1.0)


def paired_lift(pairs: Sequence[tuple[bool, bool]]) -> Lift:
    """Lift from one trial per case: ``(with_skill_passed, baseline_passed)`` per case.

    Why this method: the two conditions run on the same cases, so their pass rates
    are correlated, and an interval for independent samples would be too wide when
    the conditions mostly agree. Newcombe's (1998) method 10 combines the Wilson
    (1927) intervals of the two marginal rates with the phi correlation of the 2x2
    table; in his evaluation it kept coverage near 95% for small n, never leaves
    [-1, 1], and, unlike the Wald interval, is not zero-width when no case disagrees
    (it is then symmetric about 0 and contains it).

    The p-value is the exact McNemar test on the discordant cases (see
    :func:`mcnemar_exact`). The verdict comes from the interval alone; note that the
    interval and the exact test are different procedures and can disagree at the
    margin with very few discordant cases.
    """
    if not pairs:
        return _NO_DATA
    both = with_only = baseline_only = neither = 0
    for with_passed, baseline_passed in pairs:
        w, b = bool(with_passed), bool(baseline_passed)
        if w and b:
            both += 1
        elif w:
            with_only += 1
        elif b:
            baseline_only += 1
        else:
            neither += 1
    diff, lower, upper = _newcombe10(both, with_only, baseline_only, neither)
    ci = (lower, upper)
    return Lift(
        lift=diff,
        ci=ci,
        p_value=mcnemar_exact(with_only, baseline_only),
        method="newcombe10",
        cases=len(pairs),
        discordant=(with_only, baseline_only),
        verdict=_verdict(ci),
    )


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Quantile by linear interpolation between order statistics.

    This is Hyndman & Fan's type 7, the default of ``numpy.percentile`` and R.
    """
    h = (len(sorted_values) - 1) * q
    i = math.floor(h)
    if i + 1 >= len(sorted_values):
        return sorted_values[-1]
    return sorted_values[i] + (h - i) * (sorted_values[i + 1] - sorted_values[i])


def bootstrap_lift(
    case_rates: Sequence[tuple[float, float]], *, resamples: int = 2000, seed: int = 20240611
) -> Lift:
    """Lift from several trials per case: per case ``(with_fraction, baseline_fraction)``.

    With repeated trials a case's outcome is a pass fraction, not a yes/no, so the
    2x2-table methods no longer apply. The point estimate is the mean per-case
    difference (equal to the difference of the two overall rates when every case
    has the same number of trials). The 95% interval is a percentile bootstrap
    that resamples *cases* with replacement, because cases - not trials - are the
    independent units: trials of one case share its difficulty.

    The bootstrap is seeded (``random.Random(seed)``, one ``random()`` draw per
    resampled case) so the same input always gives the same interval, and a cached
    replay reproduces the report exactly.

    p_value: exact McNemar test (:func:`mcnemar_exact`) on the cases whose
    *majority verdict* differs - the with-skill fraction is > 0.5 and the baseline
    fraction is not, or the other way round (a fraction of exactly 0.5 counts as
    not passing). ``discordant`` holds those two counts. It is a coarse test that
    ignores changes which do not flip a case's majority; the interval uses all the
    information.

    The verdict comes from the interval as in :func:`paired_lift`. One exception: a
    single case gives a bootstrap distribution that is a single point, i.e. no
    measure of uncertainty at all, so one case is always "inconclusive".
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not case_rates:
        return _NO_DATA
    diffs: list[float] = []
    with_only = baseline_only = 0
    for with_rate, baseline_rate in case_rates:
        w, b = float(with_rate), float(baseline_rate)
        if not (0.0 <= w <= 1.0 and 0.0 <= b <= 1.0):
            raise ValueError(
                f"pass fractions must lie in [0, 1], got ({with_rate}, {baseline_rate})"
            )
        diffs.append(w - b)
        if w > 0.5 and not b > 0.5:
            with_only += 1
        elif b > 0.5 and not w > 0.5:
            baseline_only += 1

    n = len(diffs)
    point = _clip(math.fsum(diffs) / n, -1.0, 1.0)
    rng = random.Random(seed)
    means: list[float] = []
    for _ in range(resamples):
        total = 0.0
        for _ in range(n):
            total += diffs[int(rng.random() * n)]
        means.append(total / n)
    means.sort()
    lower = _clip(_quantile(means, 0.025), -1.0, 1.0)
    upper = _clip(_quantile(means, 0.975), -1.0, 1.0)
    ci = (lower, upper)
    verdict = "inconclusive" if n < 2 else _verdict(ci)
    return Lift(
        lift=point,
        ci=ci,
        p_value=mcnemar_exact(with_only, baseline_only),
        method="bootstrap",
        cases=n,
        discordant=(with_only, baseline_only),
        verdict=verdict,
    )


def relative_change(with_value: float | None, baseline_value: float | None) -> float | None:
    """Relative change ``(with - baseline) / baseline`` of a positive quantity.

    Used for tokens and latency ("the skill saves 30% of tokens" is -0.30). None
    when either value is missing or the baseline is 0, where no ratio exists.
    """
    if with_value is None or baseline_value is None or baseline_value == 0:
        return None
    return (with_value - baseline_value) / baseline_value
