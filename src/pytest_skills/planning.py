"""A plan before spending: what a suite can detect and what its live calls will cost.

``--skill-plan`` prints it and runs nothing; ``--skill-max-cost USD`` refuses to start a
live run whose estimate is higher. Both read the recorded answers where the cache has
them (for the suite's discordance and flakiness, and for typical answer lengths) and
call no model. No pytest import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean

from pytest_skills.arms import count_tokens
from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.report.pricing import cost_usd
from pytest_skills.report.stats import (
    DEFAULT_LIFT,
    CaseOutcome,
    cases_needed,
    detectable_lift,
    suite_moments,
)

#: Discordance assumed when nothing is recorded: a skill that changes half the answers.
PRIOR_DISCORDANCE = 0.5
#: Tokens a count by words and marks undercounts against providers' tokenizers.
TOKENIZER_FACTOR = 1.3


@dataclass(frozen=True)
class PlannedCase:
    """One item's calls and, where its answers are recorded, its grades by arm."""

    model: str
    resolved: str
    calls: Sequence[Call]
    #: Per-arm trial verdicts of the recorded answers (arm condition -> verdicts).
    grades: dict[str, list[bool]]
    #: Its live calls go to a provider batch (``--skill-batch``): the batch price.
    batch: bool = False


@dataclass(frozen=True)
class ModelPlan:
    model: str
    cases: int
    trials: int
    calls: int
    live_calls: int
    discordance: float
    #: Where the discordance came from: the recorded answers, or the prior.
    measured_on: int
    detectable: float | None
    cases_for_default: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    batch: bool = False

    def lines(self) -> list[str]:
        source = (
            f"measured on {self.measured_on} recorded case(s)"
            if self.measured_on
            else f"assumed {PRIOR_DISCORDANCE:.0%}: nothing recorded yet"
        )
        detect = f"{self.detectable * 100:+.0f}pp" if self.detectable is not None else "no lift"
        cost = f"${self.cost_usd:.2f}" if self.cost_usd is not None else "price not known"
        if self.batch and self.cost_usd is not None:
            cost += " at batch price"
        return [
            f"{self.model}: {self.cases} cases x {self.trials} trial(s); discordance "
            f"{self.discordance:.0%} ({source})",
            f"  smallest lift detected with 80% power: {detect}; "
            f"+{DEFAULT_LIFT * 100:.0f}pp needs {self.cases_for_default} cases",
            f"  {self.calls} calls, {self.live_calls} live (the rest recorded): about "
            f"{self.input_tokens:,} input and {self.output_tokens:,} output tokens, {cost}",
        ]


def plan_models(
    cases: Sequence[PlannedCase],
    trials: int,
    finished: Callable[[Call], Outcome | None],
) -> list[ModelPlan]:
    """The plan per model; ``finished`` tells a call the cache answered from one it has not."""
    by_model: dict[str, list[PlannedCase]] = defaultdict(list)
    for case in cases:
        by_model[case.model].append(case)
    plans = []
    for model, model_cases in by_model.items():
        calls = [call for case in model_cases for call in case.calls]
        outcomes = [finished(call) for call in calls]
        live = [c for c, o in zip(calls, outcomes, strict=True) if o is None]
        lengths = [
            o.response.usage.output_tokens
            for o in outcomes
            if o is not None and o.response is not None and o.response.usage.output_tokens
        ]
        recorded = [
            CaseOutcome.from_trials(case.grades["with_skill"], case.grades["baseline"])
            for case in model_cases
            if case.grades.get("with_skill") and case.grades.get("baseline")
        ]
        moments = suite_moments(recorded) if recorded else None
        discordance = moments.discordance if moments else PRIOR_DISCORDANCE
        flakiness = (moments.flakiness or 0.0) if moments else 0.0
        discordance = min(1.0, max(discordance, 1e-3))
        input_tokens = round(
            sum(count_tokens((c.request.system or "") + c.request.prompt) for c in live)
            * TOKENIZER_FACTOR
        )
        per_answer = fmean(lengths) if lengths else None
        output_tokens = round(sum(per_answer or c.request.sampling.max_tokens for c in live))
        batch = model_cases[0].batch
        price = cost_usd(
            model_cases[0].resolved,
            {"input_tokens": input_tokens, "output_tokens": output_tokens},
            batch=batch,
        )
        plans.append(
            ModelPlan(
                model=model,
                cases=len(model_cases),
                trials=trials,
                calls=len(calls),
                live_calls=len(live),
                discordance=discordance,
                measured_on=len(recorded),
                detectable=detectable_lift(
                    len(model_cases),
                    discordance,
                    trials=trials,
                    flakiness=min(flakiness, discordance / 2),
                ),
                cases_for_default=cases_needed(
                    DEFAULT_LIFT,
                    discordance,
                    trials=trials,
                    flakiness=min(flakiness, discordance / 2),
                ),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=price if live else 0.0,
                batch=batch,
            )
        )
    return plans


def over_budget(plans: Sequence[ModelPlan], budget: float) -> str | None:
    """Why a live run must not start under ``budget`` dollars, or None."""
    known = [p.cost_usd for p in plans if p.cost_usd is not None]
    total = sum(known)
    if total > budget:
        return (
            f"the live calls of this run are estimated at ${total:.2f}, ${total - budget:.2f} "
            f"over --skill-max-cost {budget:g}; narrow the run (-k, fewer models or trials), "
            "or see the estimate per model with --skill-plan"
        )
    return None
