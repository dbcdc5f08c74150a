"""pytest nodes: a :class:`SkillFile` per test file, a :class:`SkillItem` per (case, model)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_skills.checks import CheckError, CheckRegistry, CheckResult
from pytest_skills.context import RunContext
from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.formats import Case, FormatError, Suite, load_suite
from pytest_skills.models import ModelSpec, Sampling, request_for
from pytest_skills.report.records import (
    CALL_FAILED,
    CONDITIONS,
    GRADED_BY_CHECK,
    MODEL_UNAVAILABLE,
    NOT_GRADED,
    REPLAY_MISS,
    ItemRecord,
    call_result,
)
from pytest_skills.settings import NO_MODEL_REASON, Settings

RECORD_KEY = pytest.StashKey[ItemRecord]()


class SkillCollectError(Exception):
    """A test file that cannot be collected; shown as a one-line collection error."""


def planned_calls(
    settings: Settings, suite: Suite, case: Case, spec: ModelSpec, label: str
) -> tuple[tuple[str, Call], ...]:
    """Every model call one item needs, by condition, in trial order."""
    sampling = Sampling().merged(suite.defaults).merged(case.sampling)
    conditions = CONDITIONS if settings.baseline else CONDITIONS[:1]
    return tuple(
        (
            condition,
            Call(
                request_for(
                    spec,
                    system=suite.skill.block if condition == "with_skill" else None,
                    prompt=case.prompt,
                    sampling=sampling,
                    trial=trial,
                ),
                spec,
                label,
            ),
        )
        for condition in conditions
        for trial in range(settings.trials)
    )


class SkillFile(pytest.File):
    """A skill test file (any format): one item per case and model."""

    def __init__(self, *, context: RunContext, **kwargs: Any):
        super().__init__(**kwargs)
        self.context = context

    def collect(self) -> Iterator[pytest.Item]:
        registry = self.context.registry_for(self.ihook)
        try:
            suite = load_suite(self.path, registry)
        except FormatError as error:
            raise SkillCollectError(str(error)) from None
        for warning in suite.skill.warnings:
            self.warn(pytest.PytestWarning(f"{suite.skill.path}: {warning}"))
        settings = self.context.settings
        for case in suite.cases:
            if not settings.models:
                item = SkillItem.from_parent(
                    self,
                    name=case.id,
                    nodeid=f"{self.nodeid}::{case.id}",
                    suite=suite,
                    case=case,
                    spec=None,
                    registry=registry,
                )
                item.add_marker(pytest.mark.skip(reason=NO_MODEL_REASON))
                yield item
                continue
            for spec in settings.models:
                item = SkillItem.from_parent(
                    self,
                    name=f"{case.id}[{spec.name}]",
                    # Given as text, so pytest parses it the way it parses ids from the
                    # command line and from --lf's cache: name case.id, params the model.
                    nodeid=f"{self.nodeid}::{case.id}[{spec.name}]",
                    suite=suite,
                    case=case,
                    spec=spec,
                    registry=registry,
                )
                if case.xfail:
                    item.add_marker(pytest.mark.xfail(reason=case.xfail, strict=False))
                yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SkillCollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


#: Where an item's short failure points for the fix shared by every item it touches.
SEE_SUMMARY = "(the skills summary says how to fix it)"


def error_kind(outcome: Outcome) -> str:
    """The kind of a failed call, for the record and the problems summary."""
    if outcome.model_unavailable:
        return MODEL_UNAVAILABLE
    return REPLAY_MISS if outcome.replay_miss else CALL_FAILED


def short_error(message: str, kind: str) -> str:
    """An item's one-line reason; problems shared by many items are explained once."""
    first = message.splitlines()[0] if message else "unknown error"
    if kind in (MODEL_UNAVAILABLE, REPLAY_MISS):
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
    error_kind: str | None

    @property
    def passed(self) -> bool:
        return self.check is not None and self.check.passed


class SkillCheckFailed(Exception):
    def __init__(self, graded: list[_Graded], needed: int, baseline: list[_Graded]):
        super().__init__("skill check failed")
        self.graded = graded
        self.needed = needed
        self.baseline = baseline


class SkillCallFailed(Exception):
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
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case
        self.spec = spec
        self.registry = registry
        self.add_marker(pytest.mark.skill)
        parent = self.parent
        assert isinstance(parent, SkillFile)
        self.context = parent.context
        #: Names the case in cache entries (``path::case-id``): replay misses look for it.
        self.label = f"{parent.nodeid}::{case.id}"
        self.calls = (
            planned_calls(self.context.settings, suite, case, spec, self.label)
            if spec is not None
            else ()
        )

    def runtest(self) -> None:
        assert self.spec is not None
        graded = [self._grade(condition, call) for condition, call in self.calls]
        self.stash[RECORD_KEY] = self._record(graded)
        with_skill = [g for g in graded if g.condition == "with_skill"]
        errors = [g for g in with_skill if g.error is not None]
        if errors:
            first = errors[0]
            raise SkillCallFailed(short_error(first.error or "", first.error_kind or CALL_FAILED))
        needed = self.context.settings.required_passes
        if sum(g.passed for g in with_skill) < needed:
            # The failure repr shows the answer; a report section would print it twice.
            baseline = [g for g in graded if g.condition == "baseline"]
            raise SkillCheckFailed(with_skill, needed, baseline)

    def _grade(self, condition: str, call: Call) -> _Graded:
        outcome = self.context.ask(call)
        for warning in outcome.warnings:
            self.warn(pytest.PytestWarning(warning))
        check, error = None, outcome.error
        kind = error_kind(outcome) if error is not None else None
        if outcome.response is not None:
            try:
                check = self.registry.evaluate(self.case.check, outcome.response.text)
            except CheckError as failure:  # e.g. no judge model: an error, not a verdict
                # The judge's own call (its replay miss included) is named in the message.
                error, kind = failure.message, NOT_GRADED
        return _Graded(condition, call, outcome, check, error, kind)

    def _record(self, graded: Iterable[_Graded]) -> ItemRecord:
        assert self.spec is not None and self.parent is not None
        return ItemRecord(
            nodeid=self.nodeid,
            skill=self.suite.skill.name,
            case=self.case.id,
            file=self.parent.nodeid,
            model=self.spec.name,
            resolved=self.spec.resolved,
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
                )
                for g in graded
            ),
            input=self.context.redact(self.case.input),
            context_files=tuple(
                (name, self.context.redact(content)) for name, content in self.case.context_files
            ),
        )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if isinstance(error, SkillCallFailed):
            return f"{self.spec.name if self.spec else ''}: {self.context.redact(error.message)}"
        if isinstance(error, SkillCheckFailed):
            return self.context.redact(self._failure_text(error))
        return super().repr_failure(excinfo)

    def _failure_text(self, error: SkillCheckFailed) -> str:
        """Which check failed, expected against actual, then the full answer."""
        graded = error.graded
        model = self.spec.name if self.spec else ""
        lines = [
            f"{model}: with the skill, {sum(g.passed for g in graded)} of {len(graded)} "
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
        first = next((g for g in graded if not g.passed and g.outcome.response), None)
        if first is not None:
            lines += _answer_lines("answer with the skill", first)
            trial = first.call.request.trial
            same_trial = [g for g in error.baseline if g.call.request.trial == trial]
            if same_trial:
                lines += _answer_lines("baseline answer (no skill)", same_trial[0])
        lines += ["", f"case {self.case.id} defined at {self.suite.path}:{self.case.line or ''}"]
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        return (
            self.path,
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
    return [f"{'-' * 20} {title} {'-' * 20}", response.text]
