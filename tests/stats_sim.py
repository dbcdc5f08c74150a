"""A seeded generator of paired skill-eval suites with clustered trials, for simulations.

Each case has a baseline pass probability ``p_b`` drawn from a Beta distribution with
mean ``m`` and concentration ``kappa``: ``kappa = 0`` makes every case deterministic
(``p_b`` is 0 or 1, so its trials always agree: the strongest clustering), small kappa
puts most cases near 0 or 1 (strongly correlated trials), ``kappa = inf`` gives every
case the same ``p_b`` (independent trials). The skill then fixes a case (removes its
failures) with probability ``h`` and breaks it (removes its passes) with probability
``g``, independently: ``p_w = p_b + U (1 - p_b) - V p_b``. The true paired lift, the
population mean of ``p_w - p_b``, is exactly ``h (1 - m) - g m``; with ``g > 0`` the
skill helps some cases and hurts others, so a zero lift is a weak null, not "no effect".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pytest_skills.report.stats import CaseOutcome


@dataclass(frozen=True)
class Population:
    lift: float
    kappa: float
    mean: float = 0.3
    harm: float = 0.1

    @property
    def fix(self) -> float:
        h = (self.lift + self.harm * self.mean) / (1.0 - self.mean)
        if not 0.0 <= h <= 1.0:
            raise ValueError(f"lift {self.lift} is out of reach of this population")
        return h

    def probabilities(
        self, rng: np.random.Generator, shape: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(p_with, p_base)`` arrays of the given shape (reps x cases)."""
        if self.kappa == 0:
            p_base = (rng.random(shape) < self.mean).astype(float)
        elif math.isinf(self.kappa):
            p_base = np.full(shape, self.mean)
        else:
            p_base = rng.beta(self.mean * self.kappa, (1 - self.mean) * self.kappa, shape)
        fixed = rng.random(shape) < self.fix
        broken = rng.random(shape) < self.harm
        p_with = p_base + fixed * (1.0 - p_base) - broken * p_base
        return p_with, p_base

    def suites(
        self, rng: np.random.Generator, reps: int, cases: int, trials: int
    ) -> list[list[CaseOutcome]]:
        """``reps`` suites of ``cases`` cases, each run ``trials`` times per arm."""
        p_with, p_base = self.probabilities(rng, (reps, cases))
        with_passed = rng.binomial(trials, p_with)
        base_passed = rng.binomial(trials, p_base)
        return [
            [
                CaseOutcome(int(w), trials, int(b), trials)
                for w, b in zip(with_passed[r], base_passed[r], strict=True)
            ]
            for r in range(reps)
        ]
