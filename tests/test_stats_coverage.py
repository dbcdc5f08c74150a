"""Coverage of the lift interval by a seeded simulation (issue 23).

The claim: nominal 95% intervals cover the true paired lift at least 93% of the time
for n = 2..50 cases, 1..10 trials, true lifts 0..+60pp, with trials correlated within
a case (from deterministic cases to independent trials) and a skill that helps some
cases and hurts others. The population model is in ``tests/stats_sim.py``. The grid
has 384 cells of 80 suites each (30 720 suites); everything is seeded, so the figures
are the same on every run, and the whole test takes a few seconds.

What is asserted:
* pooled over each level of every factor (each n, each trial count, each lift, each
  clustering), coverage is at least 0.93;
* no single cell is significantly below 0.93 (one-sided exact binomial test at 0.001:
  with 80 suites a cell's own estimate is too noisy to hold to 0.93 literally);
* the verdict never contradicts the interval shown: an inconclusive verdict comes
  with an interval containing 0, a conclusive one with an interval on its side of 0.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from scipy.stats import binom

from pytest_skills.report.stats import Verdict, compare
from tests.stats_sim import Population

CASES = (2, 3, 5, 8, 13, 21, 34, 50)
TRIALS = (1, 3, 10)
LIFTS = (0.0, 0.15, 0.3, 0.6)
KAPPAS = (0.0, 0.5, 4.0, math.inf)
REPS = 80


@pytest.fixture(scope="module")
def coverage() -> dict[tuple[int, int, float, float], int]:
    rng = np.random.default_rng(2023)
    hits: dict[tuple[int, int, float, float], int] = {}
    for n in CASES:
        for trials in TRIALS:
            for lift in LIFTS:
                for kappa in KAPPAS:
                    covered = 0
                    for suite in Population(lift, kappa).suites(rng, REPS, n, trials):
                        result = compare(suite)
                        assert result.ci is not None and result.lift is not None
                        low, high = result.ci
                        covered += low <= lift <= high
                        if result.verdict is Verdict.INCONCLUSIVE:
                            assert low <= 0.0 <= high
                        elif result.verdict is Verdict.IMPROVES:
                            assert low >= 0.0 and high > 0.0
                        else:
                            assert high <= 0.0 and low < 0.0
                    hits[(n, trials, lift, kappa)] = covered
    return hits


def test_the_population_model_has_the_stated_lift() -> None:
    rng = np.random.default_rng(5)
    for lift in LIFTS:
        for kappa in KAPPAS:
            p_with, p_base = Population(lift, kappa).probabilities(rng, (400_000,))
            assert float(np.mean(p_with - p_base)) == pytest.approx(lift, abs=0.005)


@pytest.mark.parametrize("factor", ["cases", "trials", "lift", "clustering"])
def test_pooled_coverage_is_at_least_93_percent(
    coverage: dict[tuple[int, int, float, float], int], factor: str
) -> None:
    position = ["cases", "trials", "lift", "clustering"].index(factor)
    pooled: dict[float, list[int]] = defaultdict(list)
    for key, covered in coverage.items():
        pooled[key[position]].append(covered)
    rates = {level: sum(c) / (REPS * len(c)) for level, c in pooled.items()}
    assert min(rates.values()) >= 0.93, rates


def test_no_cell_is_significantly_below_93_percent(
    coverage: dict[tuple[int, int, float, float], int],
) -> None:
    low = {key: c / REPS for key, c in coverage.items() if binom.cdf(c, REPS, 0.93) < 0.001}
    assert not low, low
    assert len(coverage) == len(CASES) * len(TRIALS) * len(LIFTS) * len(KAPPAS)
    # The overall figure, for the record: nominal 95%, conservative by construction.
    assert sum(coverage.values()) / (REPS * len(coverage)) >= 0.95
