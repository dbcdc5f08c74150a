"""The paired comparison of two arms on the same cases: lift, interval, exact test, verdict.

The unit is the case. Trials of one case share its difficulty, so they are clustered,
not independent: ten trials of one case are not ten cases. Every figure here is
computed from one outcome per case and arm, the case's *pass share* (passes / trials),
so adding trials can sharpen each case's share but can never make the sample look
bigger than the number of cases.

* ``lift``: the mean over cases of ``with_share - baseline_share``.
* ``p_value``: the exact sign-flip (Fisher-Pitman permutation) test on the per-case
  differences. Under "the skill makes no difference" the two arms of a case are
  exchangeable, so each case's difference is as likely to carry either sign; the
  p-value enumerates all ``2^m`` sign patterns of the ``m`` non-zero differences
  exactly. With one trial per case the differences are -1, 0, +1 and the test *is*
  the exact McNemar test.
* ``ci``: Newcombe's (1998) method 11 (method 10 with continuity-corrected Wilson
  intervals) on the case-level 2x2 table whose cells are the sums over cases of the
  shares' products (with one trial, or deterministic trials, the ordinary 2x2 table
  of cases). The Wilson variances it uses are the largest a share with that mean can
  have, and its correlation term is the cases' observed covariance, so it never
  shrinks with repeated trials. The interval shown then agrees with the verdict: it
  contains 0 exactly when the verdict is ``inconclusive`` (see :func:`_shown_interval`).
* ``verdict``: ``improves`` / ``hurts`` when the (multiplicity-adjusted) p-value is at
  most alpha, by the sign of the lift; ``inconclusive`` otherwise. The smallest p
  with n cases is ``2 / 2^n``, so with 5 or fewer cases nothing is conclusive at
  alpha = 0.05, and with 2 cases nothing ever is below alpha = 0.5.

References:
    R. A. Fisher (1935). The Design of Experiments, section 21 (the sign-flip
    randomisation test for paired differences).
    E. J. G. Pitman (1937). Significance tests which may be applied to samples from any
    populations. JRSS Suppl. 4:119-130.
    R. G. Newcombe (1998). Improved confidence intervals for the difference between
    binomial proportions based on paired data. Statistics in Medicine 17:2635-2650.
    M. W. Fagerland, S. Lydersen, P. Laake (2013). The McNemar test for binary
    matched-pairs data: mid-p and asymptotic are better than exact conditional.
    BMC Med. Res. Methodol. 13:91 (why we still keep the exact test: its size never
    exceeds alpha, which a gate needs).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from fractions import Fraction

from pytest_skills.report.binomial import (
    Z95,
    clip,
    normal_quantile,
    wilson_cc_interval,
    wilson_interval,
)

__all__ = [
    "METHOD",
    "CaseOutcome",
    "Comparison",
    "Verdict",
    "case_interval",
    "compare",
    "decide",
    "scaled_differences",
    "sign_flip_p",
]

#: The method name recorded with every comparison (JSON ``lift_method``).
METHOD = "newcombe11-cases+signflip"

#: Above this many terms in the exact sign-flip distribution (odd trial counts whose
#: least common multiple is huge) the p-value is a seeded Monte Carlo estimate.
_EXACT_LIMIT = 5_000_000
_MONTE_CARLO_DRAWS = 20_000


class Verdict(str, Enum):
    """The one vocabulary of the report: terminal, JSON, HTML and step summary."""

    IMPROVES = "improves"
    HURTS = "hurts"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:  # f"{verdict}" prints the word, on every Python version
        return self.value


@dataclass(frozen=True)
class CaseOutcome:
    """One case's trials in the two arms: passes and graded trials per arm."""

    with_passed: int
    with_trials: int
    baseline_passed: int
    baseline_trials: int

    def __post_init__(self) -> None:
        for passed, trials, arm in (
            (self.with_passed, self.with_trials, "with-skill"),
            (self.baseline_passed, self.baseline_trials, "baseline"),
        ):
            if not (isinstance(passed, int) and isinstance(trials, int)):
                raise TypeError(f"{arm} passes and trials must be integers")
            if trials < 1 or not 0 <= passed <= trials:
                raise ValueError(
                    f"{arm} arm: need trials >= 1 and 0 <= passed <= trials, "
                    f"got {passed} of {trials}"
                )

    @classmethod
    def from_trials(cls, with_skill: Sequence[bool], baseline: Sequence[bool]) -> CaseOutcome:
        """From the per-trial verdicts of each arm (each needs at least one)."""
        return cls(
            sum(map(bool, with_skill)), len(with_skill), sum(map(bool, baseline)), len(baseline)
        )

    @property
    def with_share(self) -> Fraction:
        return Fraction(self.with_passed, self.with_trials)

    @property
    def baseline_share(self) -> Fraction:
        return Fraction(self.baseline_passed, self.baseline_trials)

    @property
    def difference(self) -> Fraction:
        """``with_share - baseline_share``, exactly."""
        return self.with_share - self.baseline_share


@dataclass(frozen=True)
class Comparison:
    """A paired comparison's figures, all from one decision rule (see the module doc).

    Attributes:
        lift: mean per-case difference of pass shares, a fraction in [-1, 1];
            ``None`` without cases.
        ci: the interval shown: Newcombe's interval at ``1 - alpha``, widened to
            contain 0 when the verdict is inconclusive and cut at 0 when it is not;
            ``None`` without cases.
        p_value: the raw two-sided exact sign-flip p-value.
        verdict: from ``p_adjusted`` and the sign of the lift (:func:`decide`).
        cases: the number of paired cases.
        alpha: the level the verdict uses.
        discordant: ``(cases favouring the skill, cases favouring the baseline)``.
        p_adjusted: the p-value after the multiplicity adjustment (``adjustment``);
            equal to ``p_value`` until :func:`pytest_skills.report.multiplicity.adjust`.
        adjustment: ``"none"``, ``"holm"`` or ``"bh"``.
        score_ci: Newcombe's interval before it is made to agree with the verdict.
        method: :data:`METHOD`, or ``"none"`` without cases.
        label: what the caller compares (e.g. ``"haiku: skill vs baseline"``).
    """

    lift: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    verdict: Verdict
    cases: int
    alpha: float = 0.05
    discordant: tuple[int, int] = (0, 0)
    p_adjusted: float | None = None
    adjustment: str = "none"
    score_ci: tuple[float, float] | None = None
    method: str = METHOD
    label: str = ""

    @property
    def p_decisive(self) -> float | None:
        """The p-value the verdict follows: adjusted when the run adjusted it."""
        return self.p_value if self.p_adjusted is None else self.p_adjusted

    def with_adjusted(self, p_adjusted: float, adjustment: str) -> Comparison:
        """This comparison with a multiplicity-adjusted p-value and the verdict it gives."""
        if self.p_value is None or self.lift is None or self.score_ci is None:
            return replace(self, adjustment=adjustment)
        verdict = decide(self.lift, p_adjusted, self.alpha)
        return replace(
            self,
            p_adjusted=p_adjusted,
            adjustment=adjustment,
            verdict=verdict,
            ci=_shown_interval(self.score_ci, verdict),
        )


def decide(lift: float | None, p_value: float | None, alpha: float) -> Verdict:
    """The decision rule: conclusive exactly when the printed test rejects at ``alpha``."""
    if lift is None or p_value is None or p_value > alpha or lift == 0:
        return Verdict.INCONCLUSIVE
    return Verdict.IMPROVES if lift > 0 else Verdict.HURTS


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")


def scaled_differences(cases: Sequence[CaseOutcome]) -> tuple[int, list[int]]:
    """``(scale, a)`` with ``a[i] / scale`` exactly case i's difference of pass shares.

    ``scale`` is the least common multiple of the trial counts, so with equal trial
    counts it is just the number of trials; integers keep the exact test exact and fast.
    """
    scale = math.lcm(*(t for c in cases for t in (c.with_trials, c.baseline_trials)))
    return scale, [
        c.with_passed * (scale // c.with_trials) - c.baseline_passed * (scale // c.baseline_trials)
        for c in cases
    ]


def sign_flip_p(differences: Sequence[int], *, seed: int = 20240611) -> float:
    """Exact two-sided sign-flip p-value of the sum of integer paired differences.

    ``P(|S| >= |s|)`` where ``S = sum(e_i |d_i|)`` over the ``2^m`` equally likely sign
    patterns ``e`` of the m non-zero differences. Pass-share differences are rational;
    :func:`scaled_differences` turns them into integers, and then the distribution of
    S is the polynomial ``prod(1 + x^(2 |d_i|))``. The polynomial is multiplied in one
    Python big integer (each coefficient in its own fixed-width slot), which is exact
    and fast even for 50 cases of 10 trials.

    When the scaled range would be enormous (unusual trial counts with a huge least
    common multiple) the p-value is ``(1 + hits) / (1 + draws)`` over seeded random
    sign patterns, which is a valid p-value in its own right (Phipson & Smyth 2010).
    """
    sizes = [abs(int(d)) for d in differences if d != 0]
    target = abs(sum(int(d) for d in differences))
    if not sizes or target == 0:
        return 1.0
    total = sum(sizes)
    if 2 * total + 1 > _EXACT_LIMIT:
        return _sign_flip_monte_carlo(sizes, target, seed)
    m = len(sizes)
    width = (m + 8) // 8 * 8  # bits per coefficient: counts reach 2^m
    poly = 1
    for size in sizes:
        poly += poly << (2 * size * width)
    # Coefficient e counts the sign patterns with S = e - total; keep S >= target.
    high = poly >> ((target + total) * width)
    step = width // 8
    raw = high.to_bytes((high.bit_length() + 7) // 8 + step, "little")
    count = sum(int.from_bytes(raw[i : i + step], "little") for i in range(0, len(raw), step))
    return min(1.0, 2 * count / (1 << m))


def _sign_flip_monte_carlo(sizes: Sequence[int], target: int, seed: int) -> float:
    rng = random.Random(seed)
    hits = 0
    for _ in range(_MONTE_CARLO_DRAWS):
        s = sum(size if rng.random() < 0.5 else -size for size in sizes)
        hits += abs(s) >= target
    return (1 + hits) / (1 + _MONTE_CARLO_DRAWS)


def case_interval(
    cases: Sequence[CaseOutcome], alpha: float = 0.05, *, continuity: bool = True
) -> tuple[float, float]:
    """Newcombe (1998) method 11 (or 10) at level ``1 - alpha`` on the case-level table.

    Method 10 combines the Wilson intervals of the two arms' rates with the phi
    correlation of the paired table; method 11 (``continuity=True``, the default) uses
    continuity-corrected Wilson intervals, which keeps the coverage at or above nominal
    down to 2 cases, where method 10 dips to about 0.89.

    Cells are sums over cases of share products: ``both = sum(w b)``, ``with_only =
    sum(w (1-b))``, ``baseline_only = sum((1-w) b)``, ``neither = sum((1-w)(1-b))``,
    with n = the number of cases. With one trial per case, or trials that always
    agree, these are the integer counts of the ordinary table, so 6 cases give the
    same interval at 1 trial and at 5 identical trials.
    """
    if not cases:
        raise ValueError("an interval needs at least one case")
    z = Z95 if alpha == 0.05 else normal_quantile(1.0 - alpha / 2.0)
    both = with_only = baseline_only = neither = 0.0
    shares = [(c.with_passed / c.with_trials, c.baseline_passed / c.baseline_trials) for c in cases]
    for w, b in shares:
        both += w * b
        with_only += w * (1.0 - b)
        baseline_only += (1.0 - w) * b
        neither += (1.0 - w) * (1.0 - b)
    n = len(cases)
    x1 = math.fsum(w for w, _ in shares)
    x2 = math.fsum(b for _, b in shares)
    p1, p2 = x1 / n, x2 / n
    diff = p1 - p2
    interval = wilson_cc_interval if continuity else wilson_interval
    l1, u1 = interval(clip(x1, 0.0, n), n, z)
    l2, u2 = interval(clip(x2, 0.0, n), n, z)
    # The arms are measured on the same cases, so their errors are correlated; method
    # 10 uses the phi coefficient of the table. As in Newcombe's paper a positive
    # AD - BC is first reduced by n/2 (floored at 0), which reproduces his published
    # intervals (tests/test_stats.py). A zero margin leaves phi undefined; 0 is then
    # the neutral choice (Newcombe's interval for independent samples).
    denom = x1 * (n - x1) * x2 * (n - x2)
    phi = 0.0
    if denom > 1e-12:
        cross = both * neither - with_only * baseline_only
        if cross > 0:
            cross = max(cross - n / 2.0, 0.0)
        phi = clip(cross / math.sqrt(denom), -1.0, 1.0)
    dl1, du1 = p1 - l1, u1 - p1
    dl2, du2 = p2 - l2, u2 - p2
    lower = diff - math.sqrt(max(0.0, dl1 * dl1 - 2.0 * phi * dl1 * du2 + du2 * du2))
    upper = diff + math.sqrt(max(0.0, dl2 * dl2 - 2.0 * phi * dl2 * du1 + du1 * du1))
    return (clip(lower, -1.0, 1.0), clip(upper, -1.0, 1.0))


def _shown_interval(score_ci: tuple[float, float], verdict: Verdict) -> tuple[float, float]:
    """The interval printed beside ``verdict``: it never contradicts it.

    Inconclusive: "no effect" was not ruled out, so the interval is widened to contain
    0. Conclusive: the exact test ruled out the other side of 0, so the interval is cut
    at 0 on that side (it then ends at 0, open: the lift is above / below it). Widening
    only adds coverage; the cut loses coverage only when the test itself was wrong about
    the side, which a valid test at alpha allows at most alpha of the time, so by
    Bonferroni the coverage stays at least 1 - 2 alpha, and the simulation in
    ``tests/test_stats_coverage.py`` finds it at 0.98-0.99 overall.
    """
    low, high = score_ci
    if verdict is Verdict.IMPROVES:
        return (max(low, 0.0), max(high, 0.0))
    if verdict is Verdict.HURTS:
        return (min(low, 0.0), min(high, 0.0))
    return (min(low, 0.0), max(high, 0.0))


def compare(cases: Sequence[CaseOutcome], alpha: float = 0.05, *, label: str = "") -> Comparison:
    """Lift, interval, exact p-value and verdict of with-skill against baseline.

    ``cases`` holds one :class:`CaseOutcome` per case graded in both arms. Without
    cases every figure is ``None`` and the verdict is inconclusive.
    """
    _check_alpha(alpha)
    if not cases:
        return Comparison(
            lift=None, ci=None, p_value=None, verdict=Verdict.INCONCLUSIVE, cases=0,
            alpha=alpha, method="none", label=label,
        )  # fmt: skip
    scale, differences = scaled_differences(cases)
    lift = clip(sum(differences) / (scale * len(cases)), -1.0, 1.0)
    p = sign_flip_p(differences)
    verdict = decide(lift, p, alpha)
    score_ci = case_interval(cases, alpha)
    return Comparison(
        lift=lift,
        ci=_shown_interval(score_ci, verdict),
        p_value=p,
        verdict=verdict,
        cases=len(cases),
        alpha=alpha,
        discordant=(sum(d > 0 for d in differences), sum(d < 0 for d in differences)),
        p_adjusted=p,
        score_ci=score_ci,
        label=label,
    )
