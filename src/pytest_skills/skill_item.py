"""The item of one (case, model): its calls in every arm, its grading, its failure report.

Collected by :mod:`pytest_skills.nodes`; its calls are planned when it is made, so the
run can make them just ahead of it (see :mod:`pytest_skills.execution.window`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from pytest_skills.arms import Arm, ArmKind
from pytest_skills.checks import Check, CheckError, CheckRegistry, CheckResult
from pytest_skills.checks.judge import without_judges
from pytest_skills.checks.registry import clip
from pytest_skills.context import RunContext
from pytest_skills.errors import SkillsError
from pytest_skills.execution.agent import AgentAnswer, ask_on_demand
from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.formats import (
    Case,
    Suite,
)
from pytest_skills.models import ErrorKind, ModelSpec, Sampling, Tool, request_for
from pytest_skills.report.records import GRADED_BY_CHECK, ItemRecord, call_result
from pytest_skills.settings import Settings
from pytest_skills.stash import RECORD_KEY


def planned_calls(
    settings: Settings,
    systems: Mapping[Arm, str | None],
    suite: Suite,
    case: Case,
    spec: ModelSpec,
    label: str,
    trials: Iterable[int] | None = None,
    tools: tuple[Tool, ...] = (),
) -> tuple[tuple[str, Call], ...]:
    """Every model call one item needs, by arm (its record's condition), in trial order.

    ``systems``: each arm's system prompt for this suite (arms it cannot ask are left out).
    ``tools``: the on-demand arm's; its call is the first turn of its agent loop.
    """
    run = Sampling(reasoning=settings.reasoning)
    sampling = run.merged(suite.defaults).merged(case.sampling)
    return tuple(
        (
            arm.condition,
            Call(
                request_for(
                    spec,
                    system=system,
                    prompt=case.prompt,
                    sampling=sampling,
                    trial=trial + arm.trial_offset,
                    tools=tools if arm.kind is ArmKind.ON_DEMAND else (),
                ),
                spec,
                label,
                arm.name,
            ),
        )
        for arm, system in systems.items()
        for trial in (range(settings.trials) if trials is None else trials)
    )


@dataclass(frozen=True)
class Grading:
    """How a case is graded in this run: its checks, or why it cannot be."""

    check: Check | None
    #: Checks left out: ``judge`` checks without a judge model.
    not_graded: tuple[str, ...] = ()
    skip: str | None = None


SEE_SUMMARY = "(the skills summary says how to fix it)"
#: The trajectories of an item that ran no agent loop: one shared, read-only mapping.
NO_AGENTS: Mapping[int, AgentAnswer] = MappingProxyType({})


def short_error(message: str, kind: ErrorKind) -> str:
    """An item's one-line reason; problems shared by many items are explained once."""
    first = message.splitlines()[0] if message else "unknown error"
    if kind.shared:
        return f"{first} {SEE_SUMMARY}"
    return message


@dataclass(frozen=True)
class _Graded:
    """One planned call's answer and what the checks made of it."""

    condition: str
    call: Call
    outcome: Outcome
    check: CheckResult | None
    error: str | None
    error_kind: ErrorKind | None

    @property
    def passed(self) -> bool:
        return self.check is not None and self.check.passed


class SkillCheckFailedError(SkillsError):
    def __init__(self, graded: list[_Graded], needed: int, baseline: list[_Graded]):
        super().__init__("skill check failed")
        self.graded = graded
        self.needed = needed
        self.baseline = baseline


class SkillCallFailedError(SkillsError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SkillItem(pytest.Item):
    def __init__(
        self,
        *,
        suite: Suite,
        case: Case,
        spec: ModelSpec | None,
        registry: CheckRegistry,
        grading: Grading,
        systems: Mapping[Arm, str | None],
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case
        self.spec = spec
        self.registry = registry
        self.grading = grading
        self.add_marker(pytest.mark.skill)
        parent = self.parent
        context = getattr(parent, "context", None)
        assert parent is not None and parent.nodeid and isinstance(context, RunContext)
        self.context: RunContext = context
        #: Names the case in cache entries (``path::case-id``): replay misses look for it.
        self.label: str = f"{parent.nodeid}::{case.id}"
        self.systems: Mapping[Arm, str | None] = systems
        on_demand = any(arm.kind is ArmKind.ON_DEMAND for arm in systems)
        self.tools: tuple[Tool, ...] = (
            self.context.arm_prompts.catalog(suite).tools if on_demand else ()
        )
        #: The on-demand arm's agent loops by call index, once run. Set here, not first
        #: in runtest: an attribute added later gives every item a dict of its own.
        self.trajectories: Mapping[int, AgentAnswer] = NO_AGENTS
        # A skipped item asks nothing: its calls would be paid for and never graded.
        self.calls: tuple[tuple[str, Call], ...] = (
            planned_calls(
                self.context.settings, systems, suite, case, spec, self.label, tools=self.tools
            )
            if spec is not None and grading.check is not None
            else ()
        )

    @property
    def check(self) -> Check:
        """What grades the answers (set whenever the item runs)."""
        assert self.grading.check is not None
        return self.grading.check

    @property
    def trials(self) -> int:
        """Trials per arm planned so far."""
        return len(self.calls) // max(1, len(self.systems))

    def add_trial(self) -> tuple[Call, ...]:
        """Plan one more trial in every arm (sequential trials); return its calls."""
        assert self.spec is not None
        added = planned_calls(
            self.context.settings,
            self.systems,
            self.suite,
            self.case,
            self.spec,
            self.label,
            trials=[self.trials],
            tools=self.tools,
        )
        # Grouped by arm, in trial order, as planned_calls lays them out.
        by_arm = [
            [entry for entry in (*self.calls, *added) if entry[0] == arm.condition]
            for arm in self.systems
        ]
        self.calls = tuple(entry for group in by_arm for entry in group)
        return tuple(call for _, call in added)

    def case_outcome(self) -> tuple[list[bool], list[bool]] | None:
        """The skill and baseline verdicts of the answers in so far (waiting for them),
        or None when either arm has no graded answer."""
        verdicts: dict[str, list[bool]] = {"with_skill": [], "baseline": []}
        for condition, call in self.calls:
            if condition not in verdicts:
                continue
            outcome = self.context.calls.ask(call)
            if outcome.response is None:
                continue
            try:
                verdicts[condition].append(
                    self.registry.evaluate(self.check, outcome.response.text).passed
                )
            except CheckError:
                continue
        if not verdicts["with_skill"] or not verdicts["baseline"]:
            return None
        return verdicts["with_skill"], verdicts["baseline"]

    @property
    def planned(self) -> tuple[Call, ...]:
        """The calls this item will ask for, in order."""
        return tuple(call for _, call in self.calls)

    def gradings(self) -> list[Call] | None:
        """The judge calls grading this item's answers will make; None while an answer
        is still coming."""
        outcomes = [self.context.calls.finished(call) for call in self.planned]
        if any(outcome is None for outcome in outcomes):
            return None
        return self._gradings(outcomes)

    def _gradings(self, outcomes: Iterable[Outcome | None]) -> list[Call]:
        return [
            grading
            for outcome in outcomes
            if outcome is not None and outcome.response is not None
            for grading in self.context.judge.gradings(self.check, outcome.response.text)
        ]

    def recorded_grades(self) -> dict[str, list[bool]]:
        """The verdicts of this item's answers the cache already holds, by condition
        (for a plan: nothing is called, judges included)."""
        grades: dict[str, list[bool]] = {}
        if self.grading.check is None:
            return grades
        for condition, call in self.calls:
            outcome = self.context.calls.finished(call)
            if outcome is None or outcome.response is None:
                continue
            try:
                deterministic, _ = without_judges(self.check)
                if deterministic is None:
                    continue
                result = self.registry.evaluate(deterministic, outcome.response.text)
            except CheckError:
                continue
            grades.setdefault(condition, []).append(result.passed)
        return grades

    def runtest(self) -> None:
        assert self.spec is not None
        asked = self.context.calls
        agents: dict[int, AgentAnswer] = {}
        outcomes = []
        for index, call in enumerate(self.planned):
            if call.request.tools:  # the on-demand arm: an agent loop from this first turn
                catalog = self.context.arm_prompts.catalog(self.suite)
                budget = self.context.settings.turn_budget
                agents[index] = ask_on_demand(asked.ask, call, catalog, budget)
                outcomes.append(agents[index].outcome)
            else:
                outcomes.append(asked.ask(call))
        if agents:
            self.trajectories = agents
        # The judge grades every answer of the item at once, not one after the other.
        asked.submit(self._gradings(outcomes))
        graded = [
            self._grade(condition, call, outcome)
            for (condition, call), outcome in zip(self.calls, outcomes, strict=True)
        ]
        self.stash[RECORD_KEY] = self._record(graded)
        deciding = self.context.settings.deciding_arm.condition
        with_skill = [g for g in graded if g.condition == deciding]
        errors = [g for g in with_skill if g.error is not None]
        if errors:
            first = errors[0]
            raise SkillCallFailedError(
                short_error(first.error or "", first.error_kind or ErrorKind.CALL_FAILED)
            )
        needed = self.context.settings.passes_needed(len(with_skill))
        if sum(g.passed for g in with_skill) < needed:
            # The failure repr shows the answer; a report section would print it twice.
            baseline = [g for g in graded if g.condition == "baseline"]
            raise SkillCheckFailedError(with_skill, needed, baseline)

    def _grade(self, condition: str, call: Call, outcome: Outcome) -> _Graded:
        for warning in outcome.warnings:
            self.warn(pytest.PytestWarning(warning))
        check, error = None, outcome.error
        kind = outcome.kind
        if outcome.response is not None:
            try:
                check = self.registry.evaluate(self.check, outcome.response.text)
            except CheckError as failure:  # e.g. no judge model: an error, not a verdict
                # The judge's own call (its replay miss included) is named in the message.
                error, kind = failure.message, ErrorKind.NOT_GRADED
        return _Graded(condition, call, outcome, check, error, kind)

    def _record(self, graded: Iterable[_Graded]) -> ItemRecord:
        assert self.spec is not None and self.parent is not None
        metadata = {"case": self.case.metadata, "file": self.suite.metadata}
        return ItemRecord(
            nodeid=self.nodeid,
            skill=self.suite.skill_name,
            case=self.case.id,
            file=self.parent.nodeid,
            model=self.spec.name,
            resolved=self.spec.resolved,
            metadata={key: value for key, value in metadata.items() if value},
            not_graded=self.grading.not_graded,
            results=tuple(
                call_result(
                    condition=g.condition,
                    trial=g.call.request.trial,
                    cache_key=g.call.request.key,
                    response=g.outcome.response,
                    error=g.error,
                    passed=g.check.passed if g.check is not None else None,
                    graded_by=GRADED_BY_CHECK,
                    redact=self.context.redact,
                    error_kind=g.error_kind,
                    checks=(g.check,) if g.check is not None else (),
                    **self._agent_fields(index),
                )
                for index, g in enumerate(graded)
            ),
            input=self.context.redact(self.case.input),
            context_files=tuple(
                (name, self.context.redact(content)) for name, content in self.case.context_files
            ),
        )

    def _agent_fields(self, index: int) -> dict[str, Any]:
        agent = self.trajectories.get(index)
        if agent is None:
            return {}
        return {
            "activated": agent.trajectory.activated,
            "trajectory": agent.trajectory.to_json(self.context.redact),
        }

    def _steps(self) -> list[str]:
        """The on-demand arm's trajectories, for the failure text."""
        lines = []
        for index, agent in sorted(self.trajectories.items()):
            trial = self.planned[index].request.trial
            lines.append(f"{'-' * 20} on-demand steps (trial {trial}) {'-' * 20}")
            lines += [f"  {line}" for line in agent.trajectory.lines()]
        return lines

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if isinstance(error, SkillCallFailedError) and self.trajectories:
            text = f"{self.spec.name if self.spec else ''}: {error.message}"
            return self.context.redact("\n".join([text, *self._steps()]))
        if isinstance(error, SkillCallFailedError):
            return f"{self.spec.name if self.spec else ''}: {self.context.redact(error.message)}"
        if isinstance(error, SkillCheckFailedError):
            return self.context.redact(self._failure_text(error))
        return super().repr_failure(excinfo)

    def _failure_text(self, error: SkillCheckFailedError) -> str:
        """Which check failed, expected against actual, then the full answer."""
        graded = error.graded
        model = self.spec.name if self.spec else ""
        deciding = self.context.settings.deciding_arm
        where = "with the skill" if deciding.kind is ArmKind.SKILL else f"{deciding.name} arm"
        lines = [
            f"{model}: {where}, {sum(g.passed for g in graded)} of {len(graded)} "
            f"trial(s) passed (needed {error.needed})"
        ]
        for result in graded:
            if result.passed or result.check is None:
                continue
            prefix = f"trial {result.call.request.trial}: " if len(graded) > 1 else ""
            for leaf in result.check.failures():
                lines += [
                    f"  {prefix}{leaf.kind} failed",
                    f"    expected: {leaf.expected}",
                    f"    actual:   {leaf.actual}",
                ]
        lines += [f"  not graded: {text}" for text in self.grading.not_graded]
        first = next((g for g in graded if not g.passed and g.outcome.response), None)
        if first is not None:
            lines += _answer_lines("answer with the skill", first)
            trial = first.call.request.trial
            same_trial = [g for g in error.baseline if g.call.request.trial == trial]
            if same_trial:
                lines += _answer_lines("baseline answer (no skill)", same_trial[0])
        lines += self._steps()
        lines += ["", f"case {self.case.id} defined at {self.suite.path}:{self.case.line or ''}"]
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # pytest needs a line to report a skip at the item's location: without the
        # case's (a file whose lines could not be mapped), the file's first line.
        line = self.case.line - 1 if self.case.line else 0
        return (
            self.suite.path,
            line,
            f"skill case {self.case.id} [{self.spec.name if self.spec else '-'}]",
        )


def _answer_lines(title: str, graded: _Graded) -> list[str]:
    response = graded.outcome.response
    if response is None:
        return [f"{'-' * 20} {title}: no answer ({graded.error}) {'-' * 20}"]
    notes = []
    if graded.condition == "baseline" and graded.check is not None:
        notes.append("passed" if graded.check.passed else "failed")
    if response.cached:
        notes.append("replayed")
    if notes:
        title += f" ({', '.join(notes)})"
    # Clipped: a 20 MB answer must not flood the terminal; the reports keep it whole.
    lines = [f"{'-' * 20} {title} {'-' * 20}", clip(response.text)]
    if response.reasoning:
        # Shown to explain the answer; checks never see it.
        lines += [f"{'-' * 20} reasoning (not checked) {'-' * 20}", clip(response.reasoning)]
    if not response.text.strip() and response.stop_reason in ("length", "max_tokens"):
        lines.append(
            "(no answer: max_tokens ran out first; raise max_tokens or lower the reasoning level)"
        )
    return lines
