"""Holm, Benjamini-Hochberg and no adjustment across a run's comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from pytest_skills.report.stats import (
    Adjustment,
    CaseOutcome,
    Verdict,
    adjust,
    adjust_p,
    compare,
)


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjusted_p_values_match_statsmodels(ours: str, theirs: str) -> None:
    rng = np.random.default_rng(1979)
    for m in (1, 2, 3, 7, 20):
        for _ in range(5):  # multipletests takes a tenth of a second a call
            raw = list(rng.choice([0.001, 0.01, 0.03, 0.5, 1.0], m) * rng.random(m) ** 2)
            raw[0] = raw[-1]  # ties
            expected = multipletests(raw, alpha=0.05, method=theirs)[1]
            assert adjust_p(raw, ours) == pytest.approx(list(expected), rel=1e-12, abs=1e-15)


def test_none_and_bad_input() -> None:
    assert adjust_p([0.2, 0.01], "none") == [0.2, 0.01]
    assert adjust_p([], "holm") == []
    with pytest.raises(
        ValueError, match="unknown multiplicity adjustment 'bonf': use one of holm, bh, none"
    ):
        adjust_p([0.1], "bonf")
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        adjust_p([1.5], "holm")
    assert str(Adjustment.BH) == "bh"


def test_adjust_recomputes_verdicts_and_keeps_the_raw_p() -> None:
    strong = compare([CaseOutcome(1, 1, 0, 1)] * 12, label="a")  # p = 2^-11
    borderline = compare([CaseOutcome(1, 1, 0, 1)] * 6, label="b")  # p = 2^-5
    nothing = compare([CaseOutcome(1, 1, 1, 1)] * 6, label="c")  # p = 1
    empty = compare([], label="d")
    assert borderline.verdict is Verdict.IMPROVES
    holm = adjust([strong, borderline, nothing, empty])
    assert [c.label for c in holm] == ["a", "b", "c", "d"]
    assert holm[0].p_value == strong.p_value and holm[0].p_adjusted == pytest.approx(3 * 2**-11)
    assert holm[0].verdict is Verdict.IMPROVES and holm[0].adjustment == "holm"
    # 0.03125 x 2 (the second smallest of three tested) is above 0.05: no longer conclusive,
    # and the interval shown now contains 0.
    assert holm[1].p_adjusted == pytest.approx(0.0625) and holm[1].verdict is Verdict.INCONCLUSIVE
    assert holm[1].ci is not None and holm[1].ci[0] <= 0.0 <= holm[1].ci[1]
    assert holm[1].p_value == borderline.p_value
    # The comparison without data is not in the family (3 tested, not 4) and decides nothing.
    assert holm[3].p_value is None and holm[3].verdict is Verdict.INCONCLUSIVE
    assert adjust([strong, borderline, nothing], "none")[1].verdict is Verdict.IMPROVES
    bh = adjust([strong, borderline, nothing], "bh")
    assert bh[1].p_adjusted == pytest.approx(0.046875) and bh[1].verdict is Verdict.IMPROVES


def test_holm_controls_the_familywise_error_rate_where_none_does_not() -> None:
    # Ten comparisons of 30 cases of 3 trials in which the skill makes no difference:
    # the chance of at least one false verdict, by seeded simulation.
    rng = np.random.default_rng(12)
    reps, families = 300, {"holm": 0, "bh": 0, "none": 0}
    for _ in range(reps):
        p = rng.random((10, 30))
        with_passed = rng.binomial(3, p)
        base_passed = rng.binomial(3, p)
        comparisons = [
            compare([CaseOutcome(int(w), 3, int(b), 3) for w, b in zip(ws, bs, strict=True)])
            for ws, bs in zip(with_passed, base_passed, strict=True)
        ]
        for method in families:
            families[method] += any(
                c.verdict is not Verdict.INCONCLUSIVE for c in adjust(comparisons, method)
            )
    assert families["holm"] / reps <= 0.05
    assert families["bh"] / reps <= 0.05  # all nulls true: FDR = FWER
    assert families["none"] / reps > 0.1
