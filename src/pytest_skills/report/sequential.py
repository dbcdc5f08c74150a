"""Sequential trials: when may a comparison stop taking trials (or cases)?

The rule is a group-sequential design with a Haybittle-Peto boundary and Bonferroni
accounting. The maximum number of looks K is fixed before the first look (for
``--skill-trials auto:MAX`` it is MAX: one look after each round of trials). At each
look the comparison's ordinary exact sign-flip test (:func:`~.paired.compare`) is
run on the case-level outcomes so far, and its verdict is settled when

* the p-value is at most the look's threshold: ``alpha_i`` at each of the K - 1
  interim looks, with ``alpha_i = min(0.001 alpha / 0.05, alpha / (2 (K - 1)))``, and
  ``alpha - (K - 1) alpha_i`` at the last look (so at least ``alpha / 2``, and close
  to alpha for the usual K <= 10: 0.041 at K = 10); or
* it can never get there: with n cases the exact test's smallest possible p-value is
  ``2 / 2^n``, whatever the further trials show; if that exceeds the last look's
  threshold the verdict is settled as inconclusive at once (2 cases never need a
  second trial); or
* this is the last look.

Why this rule keeps the false-positive rate at or below alpha: a false verdict needs
some look i to reject, and each look's test is valid at its own level, so
``P(any rejection) <= sum_i alpha_i = alpha`` (Bonferroni), whatever the dependence
between looks, whatever adaptive choice of which cases get more trials, and despite the
discreteness of the exact test. The price is a little power at the last look; the
Haybittle-Peto shape (tiny interim thresholds, nearly all of alpha at the end) keeps it
small, and an interim look still stops a comparison whose evidence is overwhelming.
Stopping early for futility never adds a false positive. ``tests/test_sequential.py``
checks the rate by a seeded simulation.

References:
    J. L. Haybittle (1971). Repeated assessment of results in clinical trials of cancer
    treatment. British Journal of Radiology 44:793-797.
    R. Peto et al. (1976). Design and analysis of randomized clinical trials requiring
    prolonged observation of each patient. I. British Journal of Cancer 34:585-612.
    C. Jennison, B. W. Turnbull (2000). Group Sequential Methods with Applications to
    Clinical Trials. Chapman & Hall/CRC (chapter 2; Bonferroni bounds, section 2.7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from pytest_skills.report.paired import CaseOutcome, Comparison, Verdict, compare

__all__ = [
    "RULE_NAME",
    "Decision",
    "Stop",
    "StoppingRule",
    "needs_more_trials",
    "sequential_decision",
]

RULE_NAME = "haybittle-peto-bonferroni"


class Stop(str, Enum):
    """Why a comparison is, or is not yet, settled at a look."""

    CONTINUE = "continue"
    CONCLUSIVE = "conclusive"  # the look's test rejected: improves or hurts
    FUTILE = "futile"  # no further trial can make it conclusive
    LAST_LOOK = "last look"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class StoppingRule:
    """A Haybittle-Peto boundary over at most ``looks`` looks at level ``alpha``."""

    alpha: float = 0.05
    looks: int = 10

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {self.alpha}")
        if isinstance(self.looks, bool) or not isinstance(self.looks, int) or self.looks < 1:
            raise ValueError(f"the number of looks must be a whole number >= 1, got {self.looks}")

    @property
    def name(self) -> str:
        return RULE_NAME

    @property
    def interim_alpha(self) -> float:
        """The threshold of every look but the last (0 with a single look)."""
        if self.looks == 1:
            return 0.0
        return min(0.001 * self.alpha / 0.05, self.alpha / (2 * (self.looks - 1)))

    @property
    def final_alpha(self) -> float:
        return self.alpha - (self.looks - 1) * self.interim_alpha

    def threshold(self, look: int) -> float:
        """The p-value a comparison needs at ``look`` (1-based) to be settled."""
        if not 1 <= look <= self.looks:
            raise ValueError(f"look must lie in 1..{self.looks}, got {look}")
        return self.final_alpha if look == self.looks else self.interim_alpha


@dataclass(frozen=True)
class Decision:
    """A comparison at one look: its figures at the look's level, and whether to stop."""

    look: int
    threshold: float
    stop: Stop
    comparison: Comparison

    @property
    def settled(self) -> bool:
        return self.stop is not Stop.CONTINUE

    @property
    def verdict(self) -> Verdict:
        return self.comparison.verdict


def sequential_decision(
    rule: StoppingRule,
    look: int,
    cases: Sequence[CaseOutcome],
    *,
    max_cases: int | None = None,
    label: str = "",
) -> Decision:
    """Decide at ``look`` whether the comparison of ``cases`` is settled.

    ``max_cases`` is how many cases the comparison can still grow to when looks add
    cases (default: the cases now, i.e. only trials are added); it only matters for
    the futility stop. The comparison returned uses the look's threshold as its alpha,
    so its interval is the matching ``1 - threshold`` interval.
    """
    threshold = rule.threshold(look)
    if threshold <= 0.0:  # unreachable with looks >= 1; kept for a clear failure
        raise ValueError("a look's threshold must be positive")
    comparison = compare(cases, alpha=threshold, label=label)
    if comparison.verdict is not Verdict.INCONCLUSIVE:
        return Decision(look, threshold, Stop.CONCLUSIVE, comparison)
    if look == rule.looks:
        return Decision(look, threshold, Stop.LAST_LOOK, comparison)
    reachable = max(len(cases), max_cases or 0)
    if reachable < 1 or 2.0 / 2.0**reachable > rule.final_alpha:
        return Decision(look, threshold, Stop.FUTILE, comparison)
    return Decision(look, threshold, Stop.CONTINUE, comparison)


def needs_more_trials(case: CaseOutcome, *, min_trials: int = 2) -> bool:
    """Whether a case should get another trial: too few yet, or its trials disagree.

    A case whose trials all agree (in both arms) after ``min_trials`` is taken as
    deterministic; more trials of it would cost money and move nothing. The rule looks
    at both arms alike, so under "the skill makes no difference" it cannot favour either.
    """
    if min(case.with_trials, case.baseline_trials) < min_trials:
        return True
    return (0 < case.with_passed < case.with_trials) or (
        0 < case.baseline_passed < case.baseline_trials
    )
