"""The plan helpers: power, the detectable lift, and the cases or trials a lift needs.

Checked against a closed form (Connor's sample size for McNemar's test), against
Monte Carlo runs of the very test the verdicts use (:func:`compare`), and, for flaky
cases, against the simulation model of ``tests/stats_sim.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_skills.report.stats import (
    DEFAULT_LIFT,
    CaseOutcome,
    Verdict,
    cases_needed,
    compare,
    detectable_lift,
    min_cases_for_alpha,
    power,
    suite_moments,
    trials_needed,
)
from tests.stats_sim import Population

Z975, Z80 = 1.959963984540054, 0.8416212335729143


def _simulated_power(
    rng: np.random.Generator, cases: int, lift: float, psi: float, reps: int
) -> float:
    favour, against = (psi + lift) / 2, (psi - lift) / 2
    hits = 0
    for _ in range(reps):
        u = rng.random(cases)
        suite = [
            CaseOutcome(1, 1, 0, 1)
            if x < favour
            else CaseOutcome(0, 1, 1, 1)
            if x < favour + against
            else CaseOutcome(1, 1, 1, 1)
            for x in u
        ]
        hits += compare(suite).verdict is Verdict.IMPROVES
    return hits / reps


def test_the_exact_test_needs_six_cases_at_alpha_005() -> None:
    assert min_cases_for_alpha(0.05) == 6 and min_cases_for_alpha(0.01) == 8
    assert power(5, 1.0, 1.0) == 0.0 and detectable_lift(5, 0.3) is None
    assert power(6, 1.0, 1.0) == 1.0  # all six cases favour the skill: p = 1/32


@pytest.mark.parametrize(("cases", "lift", "psi"), [(10, 0.6, 0.6), (20, 0.3, 0.5), (40, 0.2, 0.4)])
def test_power_is_the_exact_power_of_the_exact_test(cases: int, lift: float, psi: float) -> None:
    rng = np.random.default_rng(cases)
    reps = 600
    simulated = _simulated_power(rng, cases, lift, psi, reps)
    expected = power(cases, lift, psi)
    assert abs(simulated - expected) <= 4 * math.sqrt(expected * (1 - expected) / reps) + 1e-9


def test_cases_needed_is_connors_closed_form_for_large_samples() -> None:
    # Connor (1987): n = (z_{a/2} sqrt(psi) + z_b sqrt(psi - lift^2))^2 / lift^2.
    for lift, psi in [(0.05, 0.3), (0.04, 0.1), (0.06, 0.5)]:
        connor = (Z975 * math.sqrt(psi) + Z80 * math.sqrt(psi - lift**2)) ** 2 / lift**2
        assert connor > 300  # the normal-approximation path
        assert cases_needed(lift, psi) == math.ceil(connor)


@pytest.mark.parametrize(
    ("lift", "psi"), [(DEFAULT_LIFT, 0.3), (0.3, 0.3), (0.5, 0.0), (0.15, 0.6)]
)
def test_cases_needed_is_the_first_n_that_reaches_the_target(lift: float, psi: float) -> None:
    n = cases_needed(lift, psi)
    assert power(n, lift, psi) >= 0.8
    assert (
        n == min_cases_for_alpha(0.05)
        or power(n - 1, lift, psi) < 0.8
        or power(n - 2, lift, psi) < 0.8
    )


def test_detectable_lift_shrinks_with_more_cases_and_is_consistent() -> None:
    lifts = [detectable_lift(n, 0.3) for n in (6, 10, 20, 40, 80, 160)]
    assert all(lift is not None for lift in lifts)
    values = [lift for lift in lifts if lift is not None]
    assert values == sorted(values, reverse=True) and values[-1] < 0.2
    for n, lift in zip((6, 10, 20, 40, 80, 160), values, strict=True):
        assert power(n, lift, 0.3) >= 0.8 > power(n, lift - 0.002, 0.3)


def test_the_flakiness_model_matches_simulated_suites() -> None:
    # psi_k = psi_1 - 2 flakiness (1 - 1/k): the mean squared per-case difference of
    # simulated suites of clustered, flaky cases, at 1, 3 and 10 trials.
    rng = np.random.default_rng(24)
    population = Population(lift=0.2, kappa=4.0, harm=0.05)
    p_with, p_base = population.probabilities(rng, (200_000,))
    flaky = float(np.mean(p_with * (1 - p_with) + p_base * (1 - p_base)) / 2)
    d1 = rng.binomial(1, p_with) - rng.binomial(1, p_base)
    psi_1 = float(np.mean(d1.astype(float) ** 2))
    for k in (1, 3, 10):
        dk = (rng.binomial(k, p_with) - rng.binomial(k, p_base)) / k
        expected = psi_1 - 2 * flaky * (1 - 1 / k)
        assert float(np.mean(dk**2)) == pytest.approx(expected, abs=0.004)
    # And the power the plan predicts for 30 such cases is the power compare() shows.
    reps, cases = 300, 30
    for k in (1, 5, 10):
        hits = sum(
            compare(suite).verdict is Verdict.IMPROVES
            for suite in population.suites(rng, reps, cases, k)
        )
        planned = power(cases, 0.2, psi_1, trials=k, flakiness=flaky)
        assert abs(hits / reps - planned) < 0.1, (k, hits / reps, planned)


def test_trials_help_flaky_cases_only() -> None:
    # Deterministic cases: no number of trials helps; flaky cases: a few trials do.
    assert trials_needed(20, 0.15, 0.3) is None
    needed = trials_needed(60, 0.15, 0.4, flakiness=0.15)
    assert needed is not None and 1 < needed < 20
    assert power(60, 0.15, 0.4, trials=needed, flakiness=0.15) >= 0.8
    assert power(60, 0.15, 0.4, trials=needed - 1, flakiness=0.15) < 0.8
    assert cases_needed(0.15, 0.4, trials=10, flakiness=0.15) < cases_needed(0.15, 0.4)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="cannot exceed half the discordance"):
        power(20, 0.1, 0.1, flakiness=0.2)
    with pytest.raises(ValueError, match="discordance is a share"):
        detectable_lift(20, 1.5)
    with pytest.raises(ValueError, match="non-zero lift"):
        cases_needed(0.0, 0.3)
    with pytest.raises(ValueError, match="trials must be a whole number"):
        power(20, 0.1, 0.3, trials=0)
    with pytest.raises(ValueError, match="target power"):
        detectable_lift(20, 0.3, target=1.0)


def test_suite_moments_estimate_the_population_from_recorded_answers() -> None:
    rng = np.random.default_rng(36)
    population = Population(lift=0.2, kappa=4.0, harm=0.05)
    p_with, p_base = population.probabilities(rng, (400_000,))
    flaky = float(np.mean(p_with * (1 - p_with) + p_base * (1 - p_base)) / 2)
    psi_1 = float(np.mean(p_with + p_base - 2 * p_with * p_base))
    for trials in (2, 5):
        suite = population.suites(rng, 1, 4000, trials)[0]
        moments = suite_moments(suite)
        assert moments is not None and moments.cases == 4000
        assert moments.discordance == pytest.approx(psi_1, abs=0.02)
        assert moments.flakiness == pytest.approx(flaky, abs=0.01)
    one = suite_moments([CaseOutcome(1, 1, 0, 1), CaseOutcome(1, 1, 1, 1)])
    assert one is not None and one.discordance == 0.5 and one.flakiness is None
    assert suite_moments([]) is None
