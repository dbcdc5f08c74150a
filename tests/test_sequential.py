"""The sequential-trials stopping rule: its boundary, its decisions, and its error rate.

The error-rate check is a seeded simulation under "the skill makes no difference"
(each case's two arms share one pass probability), with trials correlated within a
case and, in a second design, cases arriving one by one. Trials are added adaptively,
only to cases whose outcomes vary (:func:`needs_more_trials`). A false positive is any
look that settles the comparison as ``improves`` or ``hurts``. The same simulation
also tests at plain alpha at every look, the mistake the rule exists to prevent, and
checks that that mistake does inflate the rate (so the check can fail).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from pytest_skills.report.stats import (
    CaseOutcome,
    Stop,
    StoppingRule,
    Verdict,
    compare,
    needs_more_trials,
    sequential_decision,
)
from tests.stats_sim import Population

ALPHA = 0.05


def test_the_boundary_spends_exactly_alpha() -> None:
    for looks in (1, 2, 3, 10, 50):
        rule = StoppingRule(alpha=ALPHA, looks=looks)
        spent = sum(rule.threshold(look) for look in range(1, looks + 1))
        assert spent == pytest.approx(ALPHA, abs=1e-15)
        assert rule.final_alpha >= ALPHA / 2
    assert StoppingRule(looks=10).interim_alpha == pytest.approx(0.001)
    assert StoppingRule(looks=10).final_alpha == pytest.approx(0.041)
    assert StoppingRule(looks=1).threshold(1) == ALPHA
    assert StoppingRule(alpha=0.01, looks=5).interim_alpha == pytest.approx(0.0002)
    with pytest.raises(ValueError, match=r"look must lie in 1\.\.3"):
        StoppingRule(looks=3).threshold(4)
    with pytest.raises(ValueError, match="whole number"):
        StoppingRule(looks=0)
    with pytest.raises(ValueError, match="alpha"):
        StoppingRule(alpha=0.0)


def test_decisions() -> None:
    rule = StoppingRule(looks=5)
    # Two cases can never be conclusive: settled at once, no second trial needed.
    two = sequential_decision(rule, 1, [CaseOutcome(1, 1, 0, 1)] * 2)
    assert two.stop is Stop.FUTILE and two.settled and two.verdict is Verdict.INCONCLUSIVE
    # ... unless more cases are still to come.
    assert sequential_decision(rule, 1, [CaseOutcome(1, 1, 0, 1)] * 2, max_cases=20).stop is (
        Stop.CONTINUE
    )
    # Overwhelming evidence settles at an interim look: 12 of 12 cases, p = 2^-11.
    strong = sequential_decision(rule, 1, [CaseOutcome(1, 1, 0, 1)] * 12)
    assert strong.stop is Stop.CONCLUSIVE and strong.verdict is Verdict.IMPROVES
    assert strong.comparison.alpha == rule.interim_alpha
    # p = 2^-5 is conclusive at a fixed alpha of 0.05 but not at an interim look ...
    six = [CaseOutcome(1, 1, 0, 1)] * 6
    assert compare(six).verdict is Verdict.IMPROVES
    assert sequential_decision(rule, 2, six).stop is Stop.CONTINUE
    # ... and it is at the last look, whose threshold is 0.05 - 4 x 0.001.
    last = sequential_decision(rule, 5, six)
    assert last.stop is Stop.CONCLUSIVE and last.threshold == pytest.approx(0.046)
    nothing = sequential_decision(rule, 5, [CaseOutcome(1, 2, 1, 2)] * 8)
    assert nothing.stop is Stop.LAST_LOOK and nothing.verdict is Verdict.INCONCLUSIVE
    assert str(Stop.FUTILE) == "futile"


def test_needs_more_trials() -> None:
    assert needs_more_trials(CaseOutcome(1, 1, 1, 1))  # one trial says nothing yet
    assert not needs_more_trials(CaseOutcome(2, 2, 0, 2))  # both arms agree with themselves
    assert needs_more_trials(CaseOutcome(1, 2, 0, 2))  # the skill arm varies
    assert needs_more_trials(CaseOutcome(3, 3, 1, 3))  # the baseline varies
    assert not needs_more_trials(CaseOutcome(1, 1, 0, 1), min_trials=1)


def _run_trials(
    rng: np.random.Generator,
    population: Population,
    cases: int,
    max_trials: int,
    use_rule: bool,
) -> tuple[bool, int]:
    """One comparison with trials added look by look; (false positive?, looks used)."""
    p_with, p_base = population.probabilities(rng, (cases,))
    with_runs = rng.random((cases, max_trials)) < p_with[:, None]
    base_runs = rng.random((cases, max_trials)) < p_base[:, None]
    rule = StoppingRule(alpha=ALPHA, looks=max_trials)
    counts = [1] * cases
    for look in range(1, max_trials + 1):
        outcomes = [
            CaseOutcome(
                int(with_runs[i, : counts[i]].sum()),
                counts[i],
                int(base_runs[i, : counts[i]].sum()),
                counts[i],
            )
            for i in range(cases)
        ]
        if use_rule:
            decision = sequential_decision(rule, look, outcomes)
            if decision.verdict is not Verdict.INCONCLUSIVE:
                return True, look
            if decision.settled:
                return False, look
        elif compare(outcomes, ALPHA).verdict is not Verdict.INCONCLUSIVE:
            return True, look  # naive: plain alpha at every look
        wanting = [i for i, o in enumerate(outcomes) if needs_more_trials(o)]
        if not wanting:
            return False, look
        for i in wanting:
            counts[i] = min(max_trials, counts[i] + 1)
    return False, max_trials


def _run_cases(
    rng: np.random.Generator, population: Population, cases: int, trials: int, use_rule: bool
) -> bool:
    """Cases arrive one by one, a look after each; a false positive?"""
    suite = population.suites(rng, 1, cases, trials)[0]
    rule = StoppingRule(alpha=ALPHA, looks=cases)
    for look in range(1, cases + 1):
        if not use_rule:
            if compare(suite[:look], ALPHA).verdict is not Verdict.INCONCLUSIVE:
                return True
            continue
        decision = sequential_decision(rule, look, suite[:look], max_cases=cases)
        if decision.settled:
            return decision.verdict is not Verdict.INCONCLUSIVE
    return False


REPS = 300


@pytest.fixture(scope="module")
def false_positives() -> dict[tuple[str, bool], int]:
    """False positives out of REPS per design, with the rule (True) or naively (False)."""
    rng = np.random.default_rng(971)
    hits: dict[tuple[str, bool], int] = {}
    for kappa in (0.5, 4.0, math.inf):
        sharp = Population(lift=0.0, kappa=kappa, harm=0.0)  # p_with == p_base per case
        for cases in (6, 12, 30):
            design = f"trials added, kappa={kappa}, {cases} cases"
            hits[design, True] = sum(
                _run_trials(rng, sharp, cases, 10, True)[0] for _ in range(REPS)
            )
        design = f"cases added, kappa={kappa}, 30 cases of 3 trials"
        hits[design, True] = sum(_run_cases(rng, sharp, 30, 3, True) for _ in range(REPS))
    independent = Population(lift=0.0, kappa=math.inf, harm=0.0)
    hits["trials added, naive", False] = sum(
        _run_trials(rng, independent, 30, 10, False)[0] for _ in range(REPS)
    )
    hits["cases added, naive", False] = sum(
        _run_cases(rng, independent, 30, 3, False) for _ in range(REPS)
    )
    return hits


def test_false_positive_rate_stays_at_or_below_alpha(
    false_positives: dict[tuple[str, bool], int],
) -> None:
    ruled = {design: h for (design, rule), h in false_positives.items() if rule}
    assert sum(ruled.values()) / (REPS * len(ruled)) <= ALPHA, ruled
    # No design on its own is significantly above alpha (one-sided exact test, 0.001).
    above = {d: h / REPS for d, h in ruled.items() if binom.sf(h - 1, REPS, ALPHA) < 0.001}
    assert not above, above


def test_testing_at_plain_alpha_every_look_would_inflate_it(
    false_positives: dict[tuple[str, bool], int],
) -> None:
    # The same simulation, testing at plain alpha after every look: significantly above
    # alpha (one-sided exact test at 0.01), so the check above is one that can fail.
    naive = {design: h for (design, rule), h in false_positives.items() if not rule}
    for design, h in naive.items():
        assert binom.sf(h - 1, REPS, ALPHA) < 0.01, (design, h / REPS)


def test_the_rule_still_finds_a_real_lift_and_stops_early() -> None:
    rng = np.random.default_rng(1027)
    population = Population(lift=0.4, kappa=0.5, harm=0.0)
    found, looks = zip(
        *(_run_trials(rng, population, 20, 10, True) for _ in range(100)), strict=True
    )
    assert sum(found) >= 80  # here a "positive" is a true one
    assert sum(looks) / len(looks) < 10
