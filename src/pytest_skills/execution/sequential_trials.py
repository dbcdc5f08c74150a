"""``--skill-trials auto[:MAX]``: trials taken in rounds, only where they can matter.

Before the items run, every selected item's first trials are asked; then, round by
round, each model's skill vs baseline comparison is looked at with the stopping rule of
:mod:`pytest_skills.report.sequential` (a Haybittle-Peto boundary with Bonferroni
accounting, which keeps the false-positive rate at or below alpha whatever the looks
decide). A comparison that is settled takes no more trials; an unsettled one gives one
more trial to each case whose outcome varies, until MAX trials. The items then run on
the trials taken, and the report says where each comparison stopped. No pytest import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_skills.execution.runner import Call
from pytest_skills.report.sequential import (
    RULE_NAME,
    StoppingRule,
    needs_more_trials,
    sequential_decision,
)
from pytest_skills.report.stats import CaseOutcome


class TrialItem(Protocol):
    """What an item offers the rounds (``SkillItem`` does)."""

    @property
    def planned(self) -> tuple[Call, ...]: ...

    @property
    def trials(self) -> int: ...

    def add_trial(self) -> tuple[Call, ...]: ...

    def case_outcome(self) -> tuple[list[bool], list[bool]] | None: ...


@dataclass(frozen=True)
class Stopped:
    """Where one model's comparison stopped taking trials, and why."""

    model: str
    look: int
    reason: str
    most_trials: int

    @property
    def text(self) -> str:
        return (
            f"{self.model}: trials stopped at look {self.look} ({self.reason}; "
            f"{RULE_NAME}), at most {self.most_trials} trial(s) per case"
        )


def take_trials(
    items_by_model: Mapping[str, Sequence[TrialItem]],
    most: int,
    submit: Callable[[Sequence[Call]], None],
) -> list[Stopped]:
    """Run the rounds; return where each model's comparison stopped."""
    rule = StoppingRule(looks=max(1, most - 1))
    stopped = []
    for model, items in items_by_model.items():
        submit([call for item in items for call in item.planned])
        look = 1
        while True:
            outcomes = {id(item): item.case_outcome() for item in items}
            cases = [CaseOutcome.from_trials(*o) for o in outcomes.values() if o is not None]
            decision = sequential_decision(rule, look, cases) if cases else None
            if decision is None or decision.settled:
                reason = "no paired case" if decision is None else str(decision.stop)
                stopped.append(Stopped(model, look, reason, max(i.trials for i in items)))
                break
            more = [
                item
                for item in items
                if item.trials < most
                and (found := outcomes[id(item)]) is not None
                and needs_more_trials(CaseOutcome.from_trials(*found))
            ]
            if not more:
                stopped.append(Stopped(model, look, "no case varies", max(i.trials for i in items)))
                break
            submit([call for item in more for call in item.add_trial()])
            look += 1
    return stopped


def by_model(items: Sequence[object], model_of: Callable[[object], str | None]) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for item in items:
        model = model_of(item)
        if model is not None:
            grouped[model].append(item)
    return dict(grouped)
