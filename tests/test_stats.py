"""Checks for pytest_skills.report.stats against independent references.

* Wilson intervals and the exact McNemar test against statsmodels and scipy; the
  continuity-corrected Wilson interval against its defining score inequality and the
  published values of Newcombe (1998a).
* Newcombe's method 10 against the intervals published in Newcombe (1998),
  "Improved confidence intervals for the difference between binomial proportions
  based on paired data", Statistics in Medicine 17:2635-2650, plus structural
  identities.
* The paired comparison (:func:`compare`): the exact sign-flip test against
  statsmodels' exact McNemar test and scipy's exact permutation test, the decision
  rule, and the issue-23 examples (6 cases at 1 and 5 trials, 2 cases).

Coverage, sequential error rates, power and multiplicity have their own files.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binomtest, permutation_test
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from pytest_skills.report.stats import (
    METHOD,
    Z95,
    CaseOutcome,
    Comparison,
    Lift,
    Verdict,
    bootstrap_lift,
    case_interval,
    compare,
    decide,
    mcnemar_exact,
    paired_lift,
    proportion,
    relative_change,
    sign_flip_p,
    wilson_cc_interval,
    wilson_interval,
)


def table_pairs(
    both: int, with_only: int, baseline_only: int, neither: int
) -> list[tuple[bool, bool]]:
    """Per-case (with_skill_passed, baseline_passed) pairs for a paired 2x2 table."""
    return (
        [(True, True)] * both
        + [(True, False)] * with_only
        + [(False, True)] * baseline_only
        + [(False, False)] * neither
    )


def cases_of(pairs: list[tuple[bool, bool]]) -> list[CaseOutcome]:
    return [CaseOutcome(int(w), 1, int(b), 1) for w, b in pairs]


def assert_well_formed(lift: Comparison) -> None:
    """Finite, clipped, ordered; the verdict follows the p-value and the interval agrees."""
    assert lift.lift is not None and lift.ci is not None and lift.score_ci is not None
    low, high = lift.ci
    assert all(math.isfinite(v) for v in (lift.lift, low, high))
    assert -1.0 <= low <= lift.lift <= high <= 1.0
    assert lift.p_value is not None and 0.0 <= lift.p_value <= 1.0
    assert lift.p_adjusted is not None
    expected = (
        "inconclusive"
        if lift.p_adjusted > lift.alpha or lift.lift == 0
        else "improves"
        if lift.lift > 0
        else "hurts"
    )
    assert lift.verdict == expected
    # The interval shown contains 0 exactly when the verdict leaves "no effect" open:
    # widened to 0 when inconclusive, cut at 0 when the test decided the side.
    score_low, score_high = lift.score_ci
    if expected == "inconclusive":
        assert low <= 0.0 <= high
        assert (low, high) == (min(score_low, 0.0), max(score_high, 0.0))
    elif expected == "improves":
        assert low >= 0.0 and high > 0.0 and (low, high) == (max(score_low, 0.0), score_high)
    else:
        assert high <= 0.0 and low < 0.0 and (low, high) == (score_low, min(score_high, 0.0))


# --- Wilson -----------------------------------------------------------------------


def _wilson_grid() -> list[tuple[int, int]]:
    grid = [(0, 1), (1, 1), (0, 2), (1, 2), (2, 2)]
    for n in (3, 5, 7, 10, 17, 20, 40, 50, 99, 100):
        grid += [(x, n) for x in range(n + 1)]
    grid += [(x, 1000) for x in (0, 1, 2, 10, 500, 990, 998, 999, 1000)]
    return grid


@pytest.mark.parametrize(("passed", "total"), _wilson_grid())
def test_wilson_matches_statsmodels(passed: int, total: int) -> None:
    ref_low, ref_high = proportion_confint(passed, total, alpha=0.05, method="wilson")
    low, high = wilson_interval(passed, total)
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)
    assert 0.0 <= low <= passed / total <= high <= 1.0


def test_wilson_ends_are_exact_and_nondegenerate() -> None:
    for n in (1, 2, 5, 40, 1000):
        low, high = wilson_interval(0, n)
        assert low == 0.0 and 0.0 < high < 1.0
        low, high = wilson_interval(n, n)
        assert high == 1.0 and 0.0 < low < 1.0
    # 1/1 and 0/1 mirror each other: upper of 0/1 = 1 - lower of 1/1 = z^2 / (1 + z^2).
    assert wilson_interval(0, 1)[1] == pytest.approx(Z95**2 / (1 + Z95**2), abs=1e-15)
    assert wilson_interval(1, 1)[0] == pytest.approx(1 - Z95**2 / (1 + Z95**2), abs=1e-15)


def test_wilson_other_levels_match_statsmodels() -> None:
    z90 = 1.6448536269514722  # scipy.stats.norm.isf(0.05)
    for passed, total in [(0, 7), (3, 7), (7, 7), (13, 40)]:
        ref = proportion_confint(passed, total, alpha=0.10, method="wilson")
        assert wilson_interval(passed, total, z=z90) == pytest.approx(ref, abs=1e-12)


def test_wilson_empty_and_invalid() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for passed, total in [(-1, 3), (4, 3), (0, -1)]:
        with pytest.raises(ValueError):
            wilson_interval(passed, total)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, z=0.0)


def test_proportion() -> None:
    empty = proportion(0, 0)
    assert (empty.passed, empty.total, empty.rate, empty.ci) == (0, 0, None, None)
    none = proportion(0, 12)
    assert none.rate == 0.0 and none.ci is not None and none.ci[0] == 0.0
    assert none.ci[1] == pytest.approx(proportion_confint(0, 12, method="wilson")[1])
    full = proportion(12, 12)
    assert full.rate == 1.0 and full.ci is not None and full.ci[1] == 1.0
    some = proportion(7, 20)
    assert some.rate == pytest.approx(0.35)
    assert some.ci == pytest.approx(proportion_confint(7, 20, method="wilson"), abs=1e-12)
    with pytest.raises(ValueError):
        proportion(3, 2)


# --- McNemar ----------------------------------------------------------------------


@pytest.mark.parametrize("b", range(0, 26, 1))
def test_mcnemar_matches_statsmodels_and_scipy(b: int) -> None:
    for c in range(26):
        # Concordant cells are arbitrary: the exact test ignores them.
        table = [[7, b], [c, 3]]
        expected = mcnemar(table, exact=True).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-300)
        if b + c:
            assert mcnemar_exact(b, c) == pytest.approx(
                binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300
            )
        assert mcnemar_exact(b, c) == mcnemar_exact(c, b)


def test_mcnemar_edges_and_large_counts() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 0) == 1.0  # 2 * 1/2, capped
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)
    assert mcnemar_exact(7, 7) == 1.0
    for b, c in [(520, 480), (1500, 1400), (3000, 10)]:
        ref = mcnemar([[0, b], [c, 0]], exact=True).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(ref, rel=1e-9, abs=1e-300)
        assert math.isfinite(mcnemar_exact(b, c))
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


# --- continuity-corrected Wilson --------------------------------------------------

# Newcombe (1998a), "Two-sided confidence intervals for the single proportion:
# comparison of seven methods", Statistics in Medicine 17:857-872, Table I, method 4
# (score interval with continuity correction). The values were recalled, not read from
# the paper now; that they agree to 4 decimals with the code is the check.
NEWCOMBE_1998A_METHOD4 = [
    ((81, 263), (0.2535, 0.3682)),
    ((0, 20), (0.0, 0.2005)),
    ((1, 29), (0.0018, 0.1963)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_1998A_METHOD4)
def test_wilson_cc_published_examples(
    counts: tuple[int, int], expected: tuple[float, float]
) -> None:
    assert wilson_cc_interval(*counts) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("total", [1, 2, 3, 6, 10, 31, 200])
def test_wilson_cc_solves_the_corrected_score_inequality(total: int) -> None:
    # Each open end is a root of |x - n p| - 1/2 = z sqrt(n p (1 - p)), found here
    # independently by scipy's root finder; shares (fractional x) included.
    for passed in [0, 0.5, 1, total / 3, total - 1, total]:
        if not 0 <= passed <= total:
            continue
        low, high = wilson_cc_interval(passed, total)

        def gap(p: float, x: float = passed) -> float:
            return abs(x - total * p) - 0.5 - Z95 * math.sqrt(total * p * (1 - p))

        plain = wilson_interval(passed, total)
        assert low <= plain[0] and plain[1] <= high  # the correction only widens
        if passed > 0.5:
            assert low == pytest.approx(brentq(gap, 1e-12, passed / total), abs=1e-9)
        if passed < total - 0.5:
            assert high == pytest.approx(brentq(gap, passed / total, 1 - 1e-12), abs=1e-9)


# --- Newcombe method 10 -------------------------------------------------------------

# Published 95% intervals for method 10, Newcombe (1998) Stat Med 17:2635-2650,
# Table II, examples (a)-(d), cells e, f, g, h = (+,+), (+,-), (-,+), (-,-). I could
# not read the paper itself; the numbers were taken from the test suite of the R
# package propint (m-Py/propint, tests/testthat/test_Two_Dependent_Props_CI.R,
# "produces the results reported in Newcombe1998"), which quotes them to 4 decimals.
# They pin down the exact form of method 10: example (b) gives 0.0562-0.3290 only
# with Newcombe's adjusted phi (positive AD - BC reduced by n/2); the raw phi gives
# 0.0618-0.3239, and example (c) gives +-0.0729 vs +-0.0640.
NEWCOMBE_1998_TABLE_II = [
    # (e, f, g, h), lower, upper
    ((36, 12, 2, 0), 0.0569, 0.3404),
    ((18, 12, 2, 18), 0.0562, 0.3290),
    ((53, 0, 0, 1), -0.0729, 0.0729),
    ((0, 30, 0, 0), 0.8395, 1.0000),
]


@pytest.mark.parametrize(("cells", "low", "high"), NEWCOMBE_1998_TABLE_II)
def test_newcombe_method10_published_examples(
    cells: tuple[int, int, int, int], low: float, high: float
) -> None:
    cases = cases_of(table_pairs(*cells))
    assert case_interval(cases, continuity=False) == pytest.approx((low, high), abs=5e-5)
    # The interval the report uses (continuity-corrected Wilson inside) is wider.
    wide = case_interval(cases)
    assert wide[0] < low - 1e-3 and (wide[1] > high + 1e-3 or high == 1.0)


def test_newcombe_is_antisymmetric() -> None:
    # Swapping the conditions negates the difference and mirrors the interval.
    for cells in [(36, 12, 2, 0), (18, 12, 2, 18), (3, 4, 1, 9), (0, 1, 0, 0), (5, 0, 7, 2)]:
        a, b, c, d = cells
        fwd = paired_lift(table_pairs(a, b, c, d))
        rev = paired_lift(table_pairs(a, c, b, d))
        assert fwd.lift is not None and rev.lift is not None
        assert fwd.ci is not None and rev.ci is not None
        assert rev.lift == pytest.approx(-fwd.lift, abs=1e-12)
        assert rev.ci == pytest.approx((-fwd.ci[1], -fwd.ci[0]), abs=1e-12)
        assert rev.p_value == fwd.p_value


def test_no_discordant_pairs_gives_symmetric_interval_around_zero() -> None:
    for both, neither in [(1, 0), (0, 1), (5, 5), (20, 0), (0, 20), (53, 1), (3, 17)]:
        lift = paired_lift(table_pairs(both, 0, 0, neither))
        assert lift.lift == 0.0 and lift.ci is not None
        assert lift.ci[0] < 0.0 < lift.ci[1]
        assert lift.ci[0] == pytest.approx(-lift.ci[1], abs=1e-12)
        assert lift.p_value == 1.0
        assert lift.discordant == (0, 0)
        assert lift.verdict == "inconclusive"


def test_all_small_tables_are_well_formed_and_agree_with_mcnemar() -> None:
    # Exhaustive over every 2x2 table with 1..10 cases.
    for n in range(1, 11):
        for a in range(n + 1):
            for b in range(n + 1 - a):
                for c in range(n + 1 - a - b):
                    lift = paired_lift(table_pairs(a, b, c, n - a - b - c))
                    assert_well_formed(lift)
                    assert lift.p_value == pytest.approx(mcnemar_exact(b, c), rel=1e-12)


# --- the paired comparison ----------------------------------------------------------


def test_issue_example_six_cases_keep_their_width_with_trials() -> None:
    # Six cases the skill always passes and the baseline always fails: five identical
    # trials add no information, so every figure is the same as with one trial.
    one = compare([CaseOutcome(1, 1, 0, 1)] * 6)
    five = compare([CaseOutcome(5, 5, 0, 5)] * 6)
    assert one == five
    assert one.lift == 1.0 and one.p_value == pytest.approx(2 / 64)
    assert one.verdict is Verdict.IMPROVES
    assert one.ci is not None and one.ci[1] == 1.0
    assert 0.3 < one.ci[0] < 0.5  # honest width: 6 cases, not 30 trials
    assert one.method == METHOD and one.discordant == (6, 0)


def test_issue_example_two_cases_are_never_conclusive() -> None:
    for outcome in [CaseOutcome(1, 1, 0, 1), CaseOutcome(5, 5, 0, 5), CaseOutcome(0, 3, 3, 3)]:
        two = compare([outcome] * 2)
        assert two.p_value == 0.5 and two.verdict is Verdict.INCONCLUSIVE
        assert two.ci is not None and two.ci[0] <= 0.0 <= two.ci[1]
    # Five cases cannot reach p <= 0.05 either (2 / 2^5 = 0.0625); six can.
    assert compare([CaseOutcome(1, 1, 0, 1)] * 5).verdict is Verdict.INCONCLUSIVE
    assert compare([CaseOutcome(0, 1, 1, 1)] * 6).verdict is Verdict.HURTS


def test_interval_never_narrows_with_more_trials() -> None:
    # The same pass shares measured with more trials can only describe the cases more
    # precisely; the interval is bounded below by what the number of cases allows.
    shares = [(1, 2), (2, 2), (0, 2), (1, 2), (2, 2), (2, 2), (0, 2), (1, 2)]
    base = [(0, 2), (1, 2), (0, 2), (0, 2), (2, 2), (1, 2), (0, 2), (0, 2)]
    widths = []
    for factor in (1, 5, 50):
        cases = [
            CaseOutcome(w * factor, t * factor, b * factor, u * factor)
            for (w, t), (b, u) in zip(shares, base, strict=True)
        ]
        lift = compare(cases)
        assert lift.ci is not None
        widths.append(lift.ci[1] - lift.ci[0])
    assert widths[0] == pytest.approx(widths[1]) == pytest.approx(widths[2])
    assert widths[0] > 0.4


def test_sign_flip_matches_scipy_exact_permutation_test() -> None:
    # scipy enumerates all 2^n sign patterns (permutation_type="samples" on paired
    # data); ours multiplies a polynomial. Fractional differences of 1..10 trials.
    rng = random.Random(23)
    for _ in range(40):
        n = rng.randint(2, 12)  # scipy needs two observations
        trials = rng.randint(1, 10)
        cases = [
            CaseOutcome(rng.randint(0, trials), trials, rng.randint(0, trials), trials)
            for _ in range(n)
        ]
        w = np.array([c.with_passed / trials for c in cases])
        b = np.array([c.baseline_passed / trials for c in cases])
        # Integer statistic so that ties are compared exactly, as ours does.
        ref = permutation_test(
            (np.rint(w * trials), np.rint(b * trials)),
            lambda x, y, axis: np.sum(x - y, axis=axis),
            permutation_type="samples",
            alternative="two-sided",
            n_resamples=np.inf,
        ).pvalue
        assert compare(cases).p_value == pytest.approx(min(1.0, ref), rel=1e-9)


def test_sign_flip_handles_mixed_trial_counts_exactly() -> None:
    cases = [CaseOutcome(2, 3, 1, 4), CaseOutcome(5, 7, 0, 2), CaseOutcome(1, 1, 3, 5)]
    diffs = [c.difference for c in cases]
    observed = abs(sum(diffs, Fraction(0)))
    hits = sum(
        abs(sum((d if s else -d for d, s in zip(diffs, signs, strict=True)), Fraction(0)))
        >= observed
        for signs in _all_signs(len(diffs))
    )
    assert compare(cases).p_value == pytest.approx(hits / 2 ** len(diffs))
    assert compare(cases).lift == pytest.approx(float(sum(diffs, Fraction(0)) / 3))


def _all_signs(n: int) -> list[tuple[bool, ...]]:
    return [
        tuple(i in chosen for i in range(n))
        for k in range(n + 1)
        for chosen in combinations(range(n), k)
    ]


def test_sign_flip_monte_carlo_fallback_is_seeded_and_close() -> None:
    # Differences whose least common multiple is huge take the seeded Monte Carlo path.
    primes = [101, 103, 107, 109, 113, 127]
    diffs = [Fraction(1, q) * (1 if i % 3 else -1) for i, q in enumerate(primes)]
    scale = math.lcm(*primes)
    ints = [int(d * scale) for d in diffs]
    first = sign_flip_p(ints)
    assert first == sign_flip_p(ints)
    observed = abs(sum(ints))
    exact = sum(
        abs(sum(d if s else -d for d, s in zip(ints, signs, strict=True))) >= observed
        for signs in _all_signs(len(ints))
    ) / 2 ** len(ints)
    assert first == pytest.approx(exact, abs=0.02)


def test_decide_is_the_one_rule() -> None:
    assert decide(0.2, 0.05, 0.05) is Verdict.IMPROVES
    assert decide(-0.2, 0.01, 0.05) is Verdict.HURTS
    assert decide(0.2, 0.0501, 0.05) is Verdict.INCONCLUSIVE
    assert decide(None, None, 0.05) is Verdict.INCONCLUSIVE
    assert decide(0.0, 0.0, 0.05) is Verdict.INCONCLUSIVE
    # The verdict prints as its word (terminal, JSON, HTML, step summary).
    assert f"{Verdict.IMPROVES}" == "improves" and str(Verdict.HURTS) == "hurts"
    assert Verdict.INCONCLUSIVE == "inconclusive"


def test_verdict_follows_the_printed_p_value_over_random_suites() -> None:
    rng = random.Random(7)
    for _ in range(300):
        trials = rng.choice([1, 2, 3, 5, 10])
        n = rng.randint(1, 40)
        cases = [
            CaseOutcome(rng.randint(0, trials), trials, rng.randint(0, trials), trials)
            for _ in range(n)
        ]
        lift = compare(cases, alpha=rng.choice([0.01, 0.05, 0.1]))
        assert_well_formed(lift)


def test_compare_edge_cases_and_bad_input() -> None:
    empty = compare([])
    assert (empty.lift, empty.ci, empty.p_value, empty.cases) == (None, None, None, 0)
    assert empty.verdict is Verdict.INCONCLUSIVE and empty.method == "none"
    for pair in [(True, False), (False, True), (True, True), (False, False)]:
        one = paired_lift([pair])
        assert_well_formed(one)
        assert one.cases == 1 and one.verdict == "inconclusive"
    for lift in (paired_lift(table_pairs(12, 0, 0, 0)), paired_lift(table_pairs(0, 0, 0, 12))):
        assert_well_formed(lift)
        assert lift.lift == 0.0 and lift.verdict == "inconclusive"
    with pytest.raises(ValueError, match="with-skill arm: need trials >= 1"):
        CaseOutcome(3, 2, 0, 1)
    with pytest.raises(ValueError, match="baseline arm"):
        CaseOutcome(0, 1, 0, 0)
    with pytest.raises(ValueError, match="alpha"):
        compare([CaseOutcome(1, 1, 0, 1)], alpha=1.5)
    assert CaseOutcome.from_trials([True, False, True], [False]) == CaseOutcome(2, 3, 0, 1)


def test_old_wrappers_route_to_compare() -> None:
    assert Lift is Comparison
    pairs = table_pairs(3, 7, 1, 2)
    assert paired_lift(pairs) == compare(cases_of(pairs))
    rates = [(1.0, 0.0), (2 / 3, 1 / 3), (0.5, 0.5), (0.0, 0.25)]
    expected = compare(
        [
            CaseOutcome(1, 1, 0, 1),
            CaseOutcome(2, 3, 1, 3),
            CaseOutcome(1, 2, 1, 2),
            CaseOutcome(0, 1, 1, 4),
        ]
    )
    assert bootstrap_lift(rates) == expected
    assert bootstrap_lift(rates, resamples=10, seed=1) == expected
    with pytest.raises(ValueError, match=r"pass fractions must lie in \[0, 1\]"):
        bootstrap_lift([(1.5, 0.0)])


# --- relative change -----------------------------------------------------------------


def test_relative_change() -> None:
    assert relative_change(70.0, 100.0) == pytest.approx(-0.3)
    assert relative_change(150, 100) == pytest.approx(0.5)
    assert relative_change(0.0, 100.0) == pytest.approx(-1.0)
    assert relative_change(5.0, 0.0) is None
    assert relative_change(None, 10.0) is None
    assert relative_change(10.0, None) is None
