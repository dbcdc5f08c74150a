"""Trigger-eval files as pytest items: one per query and model.

Each item asks its query ``k`` times (the file's ``repetitions``, else
:data:`DEFAULT_TRIALS`) in the on-demand harness, stopping at the first activation, and
passes when the share of trials that activated the file's skill reaches the threshold
(the file's, else 0.5) for ``should_trigger: true``, or stays below it for ``false``.
A split (``train``, ``validation``) is a marker (``skill_trigger_train``...) and part
of the id.

The first item of each file and model also asks the positive control: "Use the NAME
skill to answer: QUERY" with the file's first should-trigger query. When it does not
activate the skill, the model's trigger figures are invalid (said once in the summary).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_skills.context import RunContext
from pytest_skills.errors import SkillsError
from pytest_skills.execution.agent import AgentAnswer, ask_on_demand
from pytest_skills.execution.runner import Call
from pytest_skills.formats import FormatError
from pytest_skills.formats.trigger_evals import TriggerQuery, TriggerSuite, load_triggers
from pytest_skills.models import ErrorKind, ModelSpec, request_for
from pytest_skills.nodes import SkillCollectError, warn_at
from pytest_skills.ondemand import StepKind
from pytest_skills.report.records import CallResult, ItemRecord, call_result
from pytest_skills.report.text import id_text
from pytest_skills.report.trigger import CONTROL_CONDITION, TRIGGER_CONDITION
from pytest_skills.settings import NO_MODEL_REASON
from pytest_skills.stash import RECORD_KEY

DEFAULT_TRIALS = 3
#: The splits a trigger-eval file may have; each is a marker, ``skill_trigger_SPLIT``.


def control_prompt(skill: str, query: str) -> str:
    return f"Use the {skill} skill to answer: {query}"


class TriggerFile(pytest.File):
    def __init__(self, *, context: RunContext, **kwargs: Any):
        super().__init__(**kwargs)
        self.context = context

    def collect(self) -> Iterator[pytest.Item]:
        try:
            suite = load_triggers(self.path)
        except FormatError as error:
            raise SkillCollectError(str(error)) from None
        for warning in (*suite.warnings, *suite.skill.warnings):
            warn_at(self.path, warning)
        control = next((q for q in suite.queries if q.should_trigger), None)
        for index, query in enumerate(suite.queries):
            for spec in self.context.settings.models or (None,):
                base = id_text(f"{query.split}-{query.id}" if query.split else query.id)
                name = base if spec is None else f"{base}[{spec.name}]"
                item = TriggerItem.from_parent(
                    self,
                    name=name,
                    nodeid=f"{self.nodeid}::{name}",
                    suite=suite,
                    query=query,
                    spec=spec,
                    control=control if index == 0 else None,
                )
                if spec is None:
                    item.add_marker(pytest.mark.skip(reason=NO_MODEL_REASON))
                if query.split:
                    item.add_marker(getattr(pytest.mark, f"skill_trigger_{query.split}"))
                yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SkillCollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


@dataclass(frozen=True)
class _Trial:
    condition: str
    call: Call
    answer: AgentAnswer

    @property
    def failed(self) -> bool:
        steps = self.answer.trajectory.steps
        return bool(steps) and steps[-1].kind is StepKind.CALL_FAILED


class TriggerFailedError(SkillsError):
    pass


class TriggerItem(pytest.Item):
    def __init__(
        self,
        *,
        suite: TriggerSuite,
        query: TriggerQuery,
        spec: ModelSpec | None,
        control: TriggerQuery | None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.suite = suite
        self.query = query
        self.spec = spec
        self.control = control
        self.add_marker(pytest.mark.skill)
        parent = self.parent
        assert isinstance(parent, TriggerFile)
        self.context = parent.context
        self.label = f"{parent.nodeid}::{query.id}"

    @property
    def trials(self) -> int:
        return self.suite.repetitions or DEFAULT_TRIALS

    def _calls(self) -> list[tuple[str, Call]]:
        assert self.spec is not None
        catalog = self.context.arm_prompts.catalogs.for_skills([self.suite.skill])
        asked = [(TRIGGER_CONDITION, self.query.text)]
        if self.control is not None:
            asked.append(
                (CONTROL_CONDITION, control_prompt(self.suite.skill.name, self.control.text))
            )
        return [
            (
                condition,
                Call(
                    request_for(
                        self.spec,
                        prompt=prompt,
                        system=catalog.system,
                        tools=catalog.tools,
                        trial=trial,
                    ),
                    self.spec,
                    self.label,
                    "trigger",
                ),
            )
            for condition, prompt in asked
            for trial in range(self.trials)
        ]

    def runtest(self) -> None:
        calls = self._calls()
        asked = self.context.calls
        asked.submit([call for _, call in calls])  # the first turns of every trial at once
        catalog = self.context.arm_prompts.catalogs.for_skills([self.suite.skill])
        budget = self.context.settings.turn_budget
        trials = [
            _Trial(c, call, ask_on_demand(asked.ask, call, catalog, budget, until_activated=True))
            for c, call in calls
        ]
        self.stash[RECORD_KEY] = self._record(trials)
        mine = [t for t in trials if t.condition == TRIGGER_CONDITION]
        answered = [t for t in mine if not t.failed]
        if not answered:
            raise TriggerFailedError(f"no trial got an answer: {mine[0].answer.trajectory.error}")
        share = sum(self._fired(t) for t in answered) / len(answered)
        expected = self.query.should_trigger
        if (share >= self.suite.threshold) != expected:
            raise TriggerFailedError(self._failure(share, answered))

    def _fired(self, trial: _Trial) -> bool:
        return self.suite.skill.name in trial.answer.trajectory.activated

    def _failure(self, share: float, trials: list[_Trial]) -> str:
        model = self.spec.name if self.spec else ""
        should = "should" if self.query.should_trigger else "should not"
        lines = [
            f"{model}: the query {should} activate {self.suite.skill.name}: it did in "
            f"{sum(self._fired(t) for t in trials)} of {len(trials)} trials ({share:.0%}; "
            f"threshold {self.suite.threshold:g})",
            f"  query: {self.query.text}",
        ]
        for trial in trials:
            steps = trial.answer.trajectory.lines() or ["(no step)"]
            lines.append(f"  trial {trial.call.request.trial}: " + "; ".join(steps))
        line = f":{self.query.line}" if self.query.line else ""
        lines.append(f"query {self.query.id} defined at {self.suite.path}{line}")
        return "\n".join(lines)

    def _record(self, trials: list[_Trial]) -> ItemRecord:
        assert self.spec is not None and self.parent is not None
        meta = {
            "should_trigger": self.query.should_trigger,
            "threshold": self.suite.threshold,
            "split": self.query.split,
        }
        return ItemRecord(
            nodeid=self.nodeid,
            skill=self.suite.skill.name,
            case=self.query.id,
            file=self.parent.nodeid,
            model=self.spec.name,
            resolved=self.spec.resolved,
            metadata={"trigger": meta},
            results=tuple(
                self._answered(
                    t,
                    call_result(
                        condition=t.condition,
                        trial=t.call.request.trial,
                        cache_key=t.call.request.key,
                        response=None,
                        error=t.answer.trajectory.error if t.failed else None,
                        passed=None,
                        graded_by=None,
                        redact=self.context.redact,
                        error_kind=t.answer.trajectory.error_kind or ErrorKind.CALL_FAILED,
                        activated=t.answer.trajectory.activated,
                        trajectory=t.answer.trajectory.to_json(self.context.redact),
                    ),
                )
                for t in trials
            ),
            input=self.context.redact(self.query.text),
        )

    @staticmethod
    def _answered(trial: _Trial, result: CallResult) -> CallResult:
        """A trial that ended (activated, answered, or out of turns) is no failed call,
        though a trigger trial may stop before any text answer."""
        if trial.failed:
            return result
        return dataclasses.replace(result, error=None, error_kind=None)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, TriggerFailedError):
            return self.context.redact(str(excinfo.value))
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.query.line - 1 if self.query.line else 0
        return self.suite.path, line, f"trigger query {self.query.id}"
