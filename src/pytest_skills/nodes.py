"""pytest nodes: a :class:`SkillFile` per test file, a :class:`SkillItem` per (case, model)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_skills.checks import CheckError, CheckRegistry, CheckResult
from pytest_skills.checks.registry import clip
from pytest_skills.context import RunContext
from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.formats import Case, FormatError, Suite, load_suite
from pytest_skills.models import ModelSpec, Sampling, request_for
from pytest_skills.report.records import (
    CONDITIONS,
    GRADED_BY_CHECK,
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


def replay_hint(nodeid: str, model: str, outcome: Outcome | None = None) -> str:
    """How to record an answer that a replay missed, or record again one whose cache
    entry was refused as unreadable (``refresh`` overwrites it)."""
    mode = "refresh" if outcome is not None and outcome.unreadable_entry else "auto"
    return (
        f"\nTo record it, run with the model reachable:\n"
        f"    pytest '{nodeid}' --skill-model {model} --skill-cache={mode}"
    )


@dataclass(frozen=True)
class _Graded:
    """One planned call's answer and what the checks made of it."""

    condition: str
    call: Call
    outcome: Outcome
    check: CheckResult | None
    error: str | None
    replay_miss: bool

    @property
    def passed(self) -> bool:
        return self.check is not None and self.check.passed


class SkillCheckFailed(Exception):
    def __init__(self, graded: list[_Graded], needed: int):
        super().__init__("skill check failed")
        self.graded = graded
        self.needed = needed


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
            raise SkillCallFailed(self._describe_error(errors[0]))
        needed = self.context.settings.required_passes
        if sum(g.passed for g in with_skill) < needed:
            # The failure repr shows the answer; a report section would print it twice.
            raise SkillCheckFailed(with_skill, needed)

    def _grade(self, condition: str, call: Call) -> _Graded:
        outcome = self.context.ask(call)
        for warning in outcome.warnings:
            self.warn(pytest.PytestWarning(warning))
        check, error, replay_miss = None, outcome.error, outcome.replay_miss
        if outcome.response is not None:
            try:
                check = self.registry.evaluate(self.case.check, outcome.response.text)
            except CheckError as failure:  # e.g. no judge model: an error, not a verdict
                error, replay_miss = failure.message, failure.replay_miss
        return _Graded(condition, call, outcome, check, error, replay_miss)

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
                )
                for g in graded
            ),
        )

    def _describe_error(self, graded: _Graded) -> str:
        message = graded.error or "unknown error"
        if graded.replay_miss or graded.outcome.unreadable_entry:
            assert self.spec is not None
            message += replay_hint(self.nodeid, self.spec.name, graded.outcome)
        return message

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
        if first is not None and first.outcome.response is not None:
            title = "answer with the skill" + (
                " (replayed)" if first.outcome.response.cached else ""
            )
            lines += [f"{'-' * 20} {title} {'-' * 20}", clip(first.outcome.response.text)]
        lines += ["", f"case {self.case.id} defined at {self.suite.path}:{self.case.line or ''}"]
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        return (
            self.path,
            line,
            f"skill case {self.case.id} [{self.spec.name if self.spec else '-'}]",
        )
