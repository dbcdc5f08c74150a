"""pass^k and the flaky label."""

from __future__ import annotations

from itertools import combinations, product

import pytest

from pytest_skills.report.stats import FLAKY, flakiness, pass_hat_k


def test_pass_hat_k_is_the_share_of_k_subsets_that_all_passed() -> None:
    for trials in range(1, 7):
        for outcomes in product([False, True], repeat=trials):
            for k in range(1, trials + 1):
                subsets = list(combinations(outcomes, k))
                expected = sum(all(s) for s in subsets) / len(subsets)
                assert pass_hat_k(sum(outcomes), trials, k) == pytest.approx(expected)


def test_pass_hat_k_is_unbiased_for_p_to_the_k() -> None:
    # E[C(X, k) / C(n, k)] = p^k for X ~ Binomial(n, p), summed exactly.
    from math import comb

    for n, k, p in [(5, 3, 0.7), (10, 10, 0.9), (4, 1, 0.25)]:
        mean = sum(
            comb(n, x) * p**x * (1 - p) ** (n - x) * pass_hat_k(x, n, k) for x in range(n + 1)
        )
        assert mean == pytest.approx(p**k)


def test_flaky_label() -> None:
    two_of_three = flakiness([True, True, False])
    assert two_of_three.flaky and two_of_three.label == FLAKY == "flaky"
    assert two_of_three.rate == pytest.approx(2 / 3)
    assert two_of_three.k == 3 and two_of_three.pass_k == 0.0  # never all three
    assert flakiness([True, True, False], k=2).pass_k == pytest.approx(1 / 3)
    steady = flakiness([True] * 5)
    assert not steady.flaky and steady.label == "" and steady.pass_k == 1.0
    assert not flakiness([False]).flaky and flakiness([False]).pass_k == 0.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one graded trial"):
        flakiness([])
    with pytest.raises(ValueError, match=r"pass\^k needs 1 <= k <= trials \(3\), got k=4"):
        pass_hat_k(2, 3, 4)
    with pytest.raises(ValueError, match="0 <= passed <= trials"):
        pass_hat_k(4, 3, 1)
