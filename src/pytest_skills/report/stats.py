"""Statistics for skill evaluations: the public entry point.

Skill suites are small (a few dozen cases, often fewer), pass rates near 0 or 1 are
common, and repeated trials of one case are clustered, not independent. The figures
and the one decision rule are described in ``docs/statistics.md``; the code lives in:

* :mod:`.binomial`: the Wilson interval of one pass rate, the exact McNemar test;
* :mod:`.paired`: :func:`compare` (lift, interval, exact p-value and verdict of a
  paired comparison, case as the unit) and its :class:`Comparison`;
* :mod:`.multiplicity`: :func:`adjust` (Holm, Benjamini-Hochberg, none);
* :mod:`.flakiness`: pass^k and the ``flaky`` label per case;
* :mod:`.sequential`: the stopping rule for sequential trials;
* :mod:`.power`: the lift a suite can detect and the cases or trials a lift needs.

Only the standard library is used (the plugin must not pull in scipy/numpy at run
time); the tests check everything against statsmodels/scipy, published numbers and
seeded simulations.

:func:`paired_lift` and :func:`bootstrap_lift` are kept for the callers that still use
them; both now return a :class:`Comparison` from :func:`compare` (``Lift`` is its old
name). New code should build :class:`CaseOutcome` values and call :func:`compare`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from pytest_skills.report.binomial import (
    Z95,
    Proportion,
    mcnemar_exact,
    proportion,
    wilson_cc_interval,
    wilson_interval,
)
from pytest_skills.report.flakiness import FLAKY, Flakiness, flakiness, pass_hat_k
from pytest_skills.report.multiplicity import Adjustment, adjust, adjust_p
from pytest_skills.report.paired import (
    METHOD,
    CaseOutcome,
    Comparison,
    Verdict,
    case_interval,
    compare,
    decide,
    sign_flip_p,
)
from pytest_skills.report.power import (
    DEFAULT_LIFT,
    SuiteMoments,
    cases_needed,
    detectable_lift,
    min_cases_for_alpha,
    power,
    suite_moments,
    trials_needed,
)
from pytest_skills.report.sequential import (
    Decision,
    Stop,
    StoppingRule,
    needs_more_trials,
    sequential_decision,
)

__all__ = [
    "DEFAULT_LIFT",
    "FLAKY",
    "METHOD",
    "Z95",
    "Adjustment",
    "CaseOutcome",
    "Comparison",
    "Decision",
    "Flakiness",
    "Lift",
    "Proportion",
    "Stop",
    "StoppingRule",
    "SuiteMoments",
    "Verdict",
    "adjust",
    "adjust_p",
    "bootstrap_lift",
    "case_interval",
    "cases_needed",
    "compare",
    "decide",
    "detectable_lift",
    "flakiness",
    "mcnemar_exact",
    "min_cases_for_alpha",
    "needs_more_trials",
    "paired_lift",
    "pass_hat_k",
    "power",
    "proportion",
    "relative_change",
    "sequential_decision",
    "sign_flip_p",
    "suite_moments",
    "trials_needed",
    "wilson_cc_interval",
    "wilson_interval",
]

#: The old name of :class:`Comparison` (its fields lift, ci, p_value, method, cases,
#: discordant and verdict are the ones ``Lift`` had).
Lift = Comparison

#: Trial counts above this are not recovered from a float pass share.
_MAX_TRIALS = 1000


def paired_lift(pairs: Sequence[tuple[bool, bool]], alpha: float = 0.05) -> Comparison:
    """One trial per case, ``(with_skill_passed, baseline_passed)``: see :func:`compare`."""
    return compare([CaseOutcome(int(bool(w)), 1, int(bool(b)), 1) for w, b in pairs], alpha)


def _share(value: float) -> tuple[int, int]:
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"pass fractions must lie in [0, 1], got {value}")
    exact = Fraction(share).limit_denominator(_MAX_TRIALS)
    return exact.numerator, exact.denominator


def bootstrap_lift(
    case_rates: Sequence[tuple[float, float]],
    *,
    resamples: int = 2000,
    seed: int = 20240611,
    alpha: float = 0.05,
) -> Comparison:
    """Per case ``(with_share, baseline_share)`` over several trials: see :func:`compare`.

    Kept for old callers; there is no bootstrap any more (a percentile bootstrap over
    cases collapses to zero width when every case's difference is the same).
    ``resamples`` and ``seed`` are accepted and ignored. Each share is read back as the
    fraction ``passed / trials`` it came from (trial counts up to 1000); callers that
    have the counts should build :class:`CaseOutcome` values and call :func:`compare`.
    """
    del resamples, seed
    cases = []
    for with_rate, baseline_rate in case_rates:
        (wp, wt), (bp, bt) = _share(with_rate), _share(baseline_rate)
        cases.append(CaseOutcome(wp, wt, bp, bt))
    return compare(cases, alpha)


def relative_change(with_value: float | None, baseline_value: float | None) -> float | None:
    """Relative change ``(with - baseline) / baseline`` of a positive quantity.

    Used for tokens and latency ("the skill saves 30% of tokens" is -0.30). None
    when either value is missing or the baseline is 0, where no ratio exists.
    """
    if with_value is None or baseline_value is None or baseline_value == 0:
        return None
    return (with_value - baseline_value) / baseline_value
