"""Plan before spending: the lift a suite can detect, and the cases or trials a lift needs.

These are the figures ``--skill-plan`` prints. They are closed-form normal
approximations to the power of the exact sign-flip test the verdicts use
(:mod:`~pytest_skills.report.paired`), with one exact correction: with n cases that
test cannot reach p <= alpha at all while ``2 / 2^n > alpha`` (5 cases at alpha 0.05),
so the power there is 0, whatever the approximation says.

The model. Case i's difference of pass shares over k trials per arm is
``d_i = delta_i + e_i``: the case's true difference plus trial noise whose variance is
``(v_with + v_base) / k`` with ``v = p (1 - p)`` per arm. Two numbers describe a suite:

* ``discordance``: the share of cases whose two arms disagree with one trial each,
  ``E[d^2]`` at k = 1 (from recorded answers, or a guess: 0.3 is typical);
* ``flakiness``: the mean per-trial variance ``p (1 - p)`` of a case, averaged over both
  arms (0 when every case is deterministic, at most 0.25).

Then ``E[d^2]`` at k trials is ``psi_k = discordance - 2 flakiness (1 - 1/k)``: more
trials remove trial noise but never the cases' own differences. Under a true lift
``Delta`` a binary difference is non-zero on at least ``|Delta|`` of the cases, so the
discordance is taken as at least ``|Delta|``; and ``psi_k >= Delta^2`` always. With
``sigma0 = sqrt(psi_k)`` (the null spread of the sign-flip statistic) and
``sigma1 = sqrt(psi_k - Delta^2)``, the power with n cases is

    Phi((sqrt(n) |Delta| - z_{1 - alpha/2} sigma0) / sigma1)

which with one trial is the power formula of the McNemar test (Miettinen 1968; Connor
1987), and solving it for n gives Connor's sample size. ``tests/test_power.py`` checks
it against the exact power of the exact McNemar test and against a simulation with
flaky trials.

References:
    O. S. Miettinen (1968). The matched pairs design in the case of all-or-none
    responses. Biometrics 24:339-352.
    R. J. Connor (1987). Sample size for testing differences in proportions for the
    paired-sample design. Biometrics 43:207-211.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_skills.report.binomial import normal_cdf, normal_quantile
from pytest_skills.report.paired import CaseOutcome

__all__ = [
    "DEFAULT_LIFT",
    "DEFAULT_POWER",
    "SuiteMoments",
    "cases_needed",
    "detectable_lift",
    "min_cases_for_alpha",
    "power",
    "suite_moments",
    "trials_needed",
]

#: The lift ``--skill-plan`` sizes a suite for unless told otherwise (+15pp).
DEFAULT_LIFT = 0.15
DEFAULT_POWER = 0.80
_MAX_CASES = 1_000_000


def _check(
    alpha: float, discordance: float, flakiness: float, trials: int, target: float = 0.5
) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if not 0.0 <= discordance <= 1.0:
        raise ValueError(f"discordance is a share of cases in [0, 1], got {discordance}")
    if not 0.0 <= flakiness <= 0.25:
        raise ValueError(f"flakiness is a per-trial variance p(1-p) in [0, 0.25], got {flakiness}")
    if 2.0 * flakiness > discordance + 1e-12:
        raise ValueError(
            f"flakiness {flakiness:g} cannot exceed half the discordance {discordance:g}: "
            "trial noise alone already makes the arms disagree that often"
        )
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a whole number >= 1, got {trials}")
    if not 0.0 < target < 1.0:
        raise ValueError(f"the target power must lie strictly between 0 and 1, got {target}")


def min_cases_for_alpha(alpha: float) -> int:
    """The fewest cases with which the exact test can reach ``p <= alpha`` at all."""
    n = 1
    while 2.0 / 2.0**n > alpha:
        n += 1
    return n


def _psi(lift: float, discordance: float, flakiness: float, trials: int) -> float:
    base = max(discordance, abs(lift))
    return max(
        base - 2.0 * flakiness * (1.0 - 1.0 / trials), lift * lift + 2.0 * flakiness / trials
    )


def _binom_pmf(n: int, p: float) -> list[float]:
    """Binomial(n, p) probabilities, computed in log space so large n never underflows."""
    if p <= 0.0:
        return [1.0] + [0.0] * n
    if p >= 1.0:
        return [0.0] * n + [1.0]
    lp, lq = math.log(p), math.log1p(-p)
    return [
        math.exp(
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq
        )
        for k in range(n + 1)
    ]


def _critical(discordant: int, alpha: float) -> int:
    """Largest k with exact McNemar ``2 P(Bin(D, 1/2) <= k) <= alpha``; -1 when none."""
    tail, k = 0, -1
    while k + 1 <= discordant:
        tail += math.comb(discordant, k + 1)
        if 2 * tail > alpha * (1 << discordant):
            break
        k += 1
    return k


def _exact_trinomial_power(cases: int, lift: float, psi: float, alpha: float) -> float:
    # Cases favour the skill with probability (psi + lift) / 2 and the baseline with
    # (psi - lift) / 2; the exact test rejects when the smaller discordant count is at
    # most the critical value for the number D of discordant cases.
    favour = (psi + abs(lift)) / (2.0 * psi) if psi > 0 else 0.5
    total = 0.0
    for discordant, weight in enumerate(_binom_pmf(cases, psi)):
        k = _critical(discordant, alpha)
        if k < 0 or weight < 1e-15:
            continue
        split = _binom_pmf(discordant, favour)
        # min(b, c) <= k: the baseline-favouring count c <= k, or b <= k (the tails
        # overlap only when 2k >= D, which the exact test never allows).
        total += weight * (math.fsum(split[: k + 1]) + math.fsum(split[discordant - k :]))
    return min(1.0, total)


#: Up to this many cases power is the exact power of the exact test where it can be.
_EXACT_POWER_CASES = 300


def power(
    cases: int,
    lift: float,
    discordance: float,
    *,
    trials: int = 1,
    flakiness: float = 0.0,
    alpha: float = 0.05,
) -> float:
    """Power of the two-sided exact sign-flip test to detect ``lift`` with ``cases`` cases.

    Exact (summed over all outcomes of the exact McNemar test) when every per-case
    difference is -1, 0 or +1, i.e. with one trial or deterministic cases, for up to
    300 cases; the normal approximation of the module doc otherwise (fractional
    differences of flaky cases are far less dispersed than a -1/0/+1 variable with the
    same second moment, so the exact trinomial power would understate theirs).
    """
    _check(alpha, discordance, flakiness, trials)
    if not -1.0 <= lift <= 1.0:
        raise ValueError(f"a lift is a fraction in [-1, 1], got {lift}")
    if cases < min_cases_for_alpha(alpha):
        return 0.0
    psi = _psi(lift, discordance, flakiness, trials)
    binary = trials == 1 or flakiness == 0.0
    if binary and psi >= abs(lift) and cases <= _EXACT_POWER_CASES:
        return _exact_trinomial_power(cases, lift, psi, alpha)
    if lift == 0.0:
        return alpha
    z = normal_quantile(1.0 - alpha / 2.0)
    shift = math.sqrt(cases) * abs(lift) - z * math.sqrt(psi)
    spread = math.sqrt(max(0.0, psi - lift * lift))
    if spread < 1e-12:
        return 1.0 if shift > 0 else 0.0
    return normal_cdf(shift / spread)


def detectable_lift(
    cases: int,
    discordance: float,
    *,
    trials: int = 1,
    flakiness: float = 0.0,
    alpha: float = 0.05,
    target: float = DEFAULT_POWER,
) -> float | None:
    """The smallest lift (to 0.001) detected with probability ``target``; None if none is."""
    _check(alpha, discordance, flakiness, trials, target)

    def enough(step: int) -> bool:
        found = power(
            cases, step / 1000, discordance, trials=trials, flakiness=flakiness, alpha=alpha
        )
        return found >= target

    if not enough(1000):
        return None
    # Power grows with the lift, so bisect over the steps of 0.001.
    low, high = 0, 1000  # enough(high) holds; enough(low) is taken as false
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high / 1000


def cases_needed(
    lift: float = DEFAULT_LIFT,
    discordance: float = 0.0,
    *,
    trials: int = 1,
    flakiness: float = 0.0,
    alpha: float = 0.05,
    target: float = DEFAULT_POWER,
) -> int:
    """The fewest cases with which ``lift`` is detected with probability ``target``."""
    _check(alpha, discordance, flakiness, trials, target)
    if not 0.0 < abs(lift) <= 1.0:
        raise ValueError(f"plan for a non-zero lift in [-1, 1], got {lift}")
    psi = _psi(lift, discordance, flakiness, trials)
    z_a, z_b = normal_quantile(1.0 - alpha / 2.0), normal_quantile(target)
    # Connor's (1987) closed form, then upward to the first n that really reaches target
    # (the closed form can land just below it) and to the exact test's minimum.
    n = (z_a * math.sqrt(psi) + z_b * math.sqrt(max(0.0, psi - lift * lift))) ** 2 / lift**2
    cases = max(min_cases_for_alpha(alpha), math.ceil(n - 1e-9))
    while cases < _MAX_CASES and (
        power(cases, lift, discordance, trials=trials, flakiness=flakiness, alpha=alpha) < target
    ):
        cases += 1
    return cases


def trials_needed(
    cases: int,
    lift: float = DEFAULT_LIFT,
    discordance: float = 0.0,
    *,
    flakiness: float = 0.0,
    alpha: float = 0.05,
    target: float = DEFAULT_POWER,
    max_trials: int = 100,
) -> int | None:
    """The fewest trials per case with which ``cases`` cases detect ``lift``; None if none.

    More trials only remove trial noise (flakiness): with deterministic cases, or too
    few cases, no number of trials helps, and the answer is None.
    """
    for trials in range(1, max_trials + 1):
        found = power(cases, lift, discordance, trials=trials, flakiness=flakiness, alpha=alpha)
        if found >= target:
            return trials
    return None


@dataclass(frozen=True)
class SuiteMoments:
    """A suite's discordance and flakiness, estimated from recorded answers.

    Attributes:
        discordance: estimated share of cases whose arms would disagree with one trial.
        flakiness: estimated mean per-trial variance ``p (1 - p)`` over cases and arms;
            ``None`` when no case has two trials in an arm (nothing to estimate it from).
        cases: the cases the estimate rests on.
    """

    discordance: float
    flakiness: float | None
    cases: int


def suite_moments(cases: Sequence[CaseOutcome]) -> SuiteMoments | None:
    """Estimate :class:`SuiteMoments` for :func:`power` from recorded case outcomes.

    Both estimates are unbiased per case, given the case. Discordance: with one trial
    per arm, independent given the case, the arms disagree with probability
    ``p_w + p_b - 2 p_w p_b``; the shares estimate it without bias because the arms'
    trials are separate. Flakiness: ``c (n - c) / (n (n - 1))`` is the unbiased
    estimate of ``p (1 - p)`` from c passes in n >= 2 trials. The flakiness is capped at
    half the discordance, the most trial noise that discordance allows. None without
    cases.
    """
    if not cases:
        return None
    disagree = math.fsum(
        float(c.with_share + c.baseline_share - 2 * c.with_share * c.baseline_share) for c in cases
    )
    discordance = disagree / len(cases)
    variances = [
        passed * (trials - passed) / (trials * (trials - 1))
        for c in cases
        for passed, trials in (
            (c.with_passed, c.with_trials),
            (c.baseline_passed, c.baseline_trials),
        )
        if trials >= 2
    ]
    flakiness = min(math.fsum(variances) / len(variances), discordance / 2) if variances else None
    return SuiteMoments(discordance=discordance, flakiness=flakiness, cases=len(cases))
