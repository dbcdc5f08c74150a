"""Multiplicity control across the comparisons of a run (skills x models x arms).

A run that compares ten skill/model pairs at alpha = 0.05 calls at least one
"improves" by chance far more often than 1 in 20. The verdicts therefore use adjusted
p-values, shown beside the raw ones:

* ``holm`` (the default): Holm's (1979) step-down procedure. It controls the
  family-wise error rate (the chance of *any* false verdict) at alpha under any
  dependence between the comparisons, and is uniformly more powerful than Bonferroni.
* ``bh``: Benjamini & Hochberg's (1995) step-up procedure. It controls the false
  discovery rate (the expected share of false verdicts among the conclusive ones) at
  alpha for independent or positively dependent comparisons; more verdicts, weaker
  promise.
* ``none``: raw p-values, for a single planned comparison.

The adjusted p-values are the usual "adjusted" form (the smallest alpha at which the
procedure would reject), so ``p_adjusted <= alpha`` is the procedure's decision; they
match ``statsmodels.stats.multitest.multipletests`` (``holm``, ``fdr_bh``).

References:
    S. Holm (1979). A simple sequentially rejective multiple test procedure.
    Scandinavian Journal of Statistics 6:65-70.
    Y. Benjamini, Y. Hochberg (1995). Controlling the false discovery rate: a practical
    and powerful approach to multiple testing. JRSS B 57:289-300.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from pytest_skills.report.paired import Comparison

__all__ = ["Adjustment", "adjust", "adjust_p"]


class Adjustment(str, Enum):
    HOLM = "holm"
    BH = "bh"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


def _method(method: str | Adjustment) -> Adjustment:
    try:
        return Adjustment(method)
    except ValueError:
        choices = ", ".join(a.value for a in Adjustment)
        raise ValueError(
            f"unknown multiplicity adjustment {method!r}: use one of {choices}"
        ) from None


def adjust_p(p_values: Sequence[float], method: str | Adjustment = Adjustment.HOLM) -> list[float]:
    """Adjusted p-values, in the order given."""
    kind = _method(method)
    for p in p_values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must lie in [0, 1], got {p}")
    m = len(p_values)
    if kind is Adjustment.NONE or m <= 1:
        return list(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    if kind is Adjustment.HOLM:
        running = 0.0
        for rank, i in enumerate(order):
            # Step-down: the k-th smallest is compared with alpha / (m - k); the running
            # maximum keeps the adjusted values in the same order as the raw ones.
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            adjusted[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            # Step-up: the k-th smallest is compared with k alpha / m; the running
            # minimum from the largest down keeps them monotone.
            running = min(running, p_values[i] * m / (rank + 1))
            adjusted[i] = running
    return adjusted


def adjust(
    comparisons: Sequence[Comparison], method: str | Adjustment = Adjustment.HOLM
) -> list[Comparison]:
    """The comparisons with adjusted p-values, and the verdicts (and intervals) they give.

    Comparisons without data (no p-value) are not part of the family: they decide
    nothing, so they should not cost the others any power. The order is kept.
    """
    kind = _method(method)
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    adjusted = adjust_p([comparisons[i].p_value or 0.0 for i in tested], kind)
    # Without a p-value with_adjusted only records the method (the verdict stays).
    result = [c.with_adjusted(1.0, kind.value) for c in comparisons]
    for i, p in zip(tested, adjusted, strict=True):
        result[i] = comparisons[i].with_adjusted(p, kind.value)
    return result
