"""Per-case flakiness: does the case pass every time, and how often would k trials all pass?

A case that passes 2 of 3 trials is not "67% good": it is flaky, and an agent that
must succeed on every attempt succeeds on it with probability ``p^k``. pass^k (the
chance that all k independent trials pass) is the reliability figure of tau-bench (Yao
et al. 2024). With ``c`` passes in ``n`` trials, the unbiased estimate of ``p^k`` for
``k <= n`` is ``C(c, k) / C(n, k)`` (the share of k-subsets of the trials that all
passed; the same construction as the unbiased pass@k of Chen et al. 2021).

References:
    S. Yao, N. Shinn, P. Razavi, K. Narasimhan (2024). tau-bench: A benchmark for
    tool-agent-user interaction in real-world domains. arXiv:2406.12045.
    M. Chen et al. (2021). Evaluating large language models trained on code.
    arXiv:2107.03374 (the unbiased pass@k estimator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FLAKY", "Flakiness", "flakiness", "pass_hat_k"]

#: The label shown (terminal under -v, JSON, HTML) for a case whose trials disagree.
FLAKY = "flaky"


def pass_hat_k(passed: int, trials: int, k: int) -> float:
    """Unbiased estimate of the probability that k trials all pass, ``C(c,k)/C(n,k)``."""
    if trials < 1 or not 0 <= passed <= trials:
        raise ValueError(f"need trials >= 1 and 0 <= passed <= trials, got {passed} of {trials}")
    if not 1 <= k <= trials:
        raise ValueError(f"pass^k needs 1 <= k <= trials ({trials}), got k={k}")
    return math.comb(passed, k) / math.comb(trials, k)


@dataclass(frozen=True)
class Flakiness:
    """One case's trials in one arm.

    Attributes:
        passed, trials: the counts.
        rate: ``passed / trials``.
        k: the k of ``pass_k`` (the number of trials unless asked otherwise).
        pass_k: estimated probability that k trials all pass (:func:`pass_hat_k`).
        flaky: the trials disagree (some passed, some failed).
    """

    passed: int
    trials: int
    rate: float
    k: int
    pass_k: float
    flaky: bool

    @property
    def label(self) -> str:
        """``"flaky"`` when the trials disagree, else ``""``."""
        return FLAKY if self.flaky else ""


def flakiness(outcomes: Sequence[bool], k: int | None = None) -> Flakiness:
    """Flakiness of one case in one arm from its per-trial verdicts (at least one)."""
    trials = len(outcomes)
    passed = sum(map(bool, outcomes))
    if trials == 0:
        raise ValueError("flakiness needs at least one graded trial")
    k = trials if k is None else k
    return Flakiness(
        passed=passed,
        trials=trials,
        rate=passed / trials,
        k=k,
        pass_k=pass_hat_k(passed, trials, k),
        flaky=0 < passed < trials,
    )
