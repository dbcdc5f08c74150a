"""The on-demand arm's agent loop on the runner: every turn a cached call.

Each turn after the first is a new :class:`Call` (same model, label and arm), so it is
recorded and replayed like any answer, keyed by the conversation so far.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.models import ErrorKind, Request, Response
from pytest_skills.ondemand import Catalog, Trajectory, run


@dataclass(frozen=True)
class AgentAnswer:
    """The loop's final answer as one outcome, and how it got there."""

    outcome: Outcome
    trajectory: Trajectory


def ask_on_demand(
    ask: Callable[[Call], Outcome],
    first: Call,
    catalog: Catalog,
    budget: int,
    *,
    until_activated: bool = False,
) -> AgentAnswer:
    warnings: list[str] = []

    def turn(request: Request) -> tuple[Response | None, str | None, ErrorKind | None]:
        outcome = ask(dataclasses.replace(first, request=request))
        warnings.extend(outcome.warnings)
        return outcome.response, outcome.error, outcome.kind

    trajectory = run(first.request, catalog, turn, budget, until_activated=until_activated)
    if trajectory.answer is not None or (until_activated and trajectory.error is None):
        outcome = Outcome(response=trajectory.answer, warnings=tuple(warnings))
    else:
        outcome = Outcome(
            error=trajectory.error or "no answer",
            kind=trajectory.error_kind or ErrorKind.CALL_FAILED,
            warnings=tuple(warnings),
        )
    return AgentAnswer(outcome, trajectory)
