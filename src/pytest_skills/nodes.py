"""pytest nodes: a :class:`SkillFile` per test file, a :class:`SkillItem` per (case, model)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest._code.code import TerminalRepr
from _pytest._io import TerminalWriter

from pytest_skills.calls import request_for
from pytest_skills.checks import CheckError, CheckRegistry, CheckResult
from pytest_skills.models import ModelSpec, Response, Sampling
from pytest_skills.runner import Call, Outcome
from pytest_skills.spec import Case, SpecFileError, Suite, load_suite

if TYPE_CHECKING:
    from pytest_skills.session import SkillRun

CONDITIONS = ("with_skill", "baseline")
RESULT_PROPERTY = "pytest_skills"


class SkillCollectError(Exception):
    """A test file that cannot be collected; shown as a one-line collection error."""


class SkillFile(pytest.File):
    """``skill_meta.json`` or ``*.skill.yaml``: one item per case and model."""

    def collect(self) -> Iterator[pytest.Item]:
        from pytest_skills.session import RUN_KEY

        run = self.config.stash[RUN_KEY]
        self.registry = run.registry_for(self)
        try:
            suite = load_suite(self.path, self.registry)
        except SpecFileError as error:
            raise SkillCollectError(str(error)) from None
        for warning in suite.skill.warnings:
            self.warn(pytest.PytestWarning(f"{suite.skill.path}: {warning}"))
        models = run.settings.models
        for case in suite.cases:
            if not models:
                item = SkillItem.from_parent(self, name=case.id, suite=suite, case=case, spec=None)
                item.add_marker(pytest.mark.skip(reason=run.no_model_reason))
                yield item
                continue
            for spec in models:
                item = SkillItem.from_parent(
                    self, name=f"{case.id}[{spec.name}]", suite=suite, case=case, spec=spec
                )
                if case.xfail:
                    item.add_marker(pytest.mark.xfail(reason=case.xfail, strict=False))
                yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SkillCollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def answer_fields(response: Response | None, redact: Callable[[str], str]) -> dict[str, Any]:
    """A recorded answer's text, cache flag, usage and latency (``None``s without one)."""
    return {
        "output": redact(response.text) if response else None,
        "cached": response.cached if response else False,
        "usage": response.usage.as_dict() if response else None,
        "latency_s": response.latency_s if response else None,
    }


def replay_hint(nodeid: str, model: str) -> str:
    """How to record an answer that a replay missed."""
    return (
        f"\nTo record it, run with the model reachable:\n"
        f"    pytest '{nodeid}' --skill-model {model} --skill-cache=auto"
    )


@dataclass(frozen=True)
class ConditionResult:
    condition: str
    trial: int
    outcome: Outcome
    check: CheckResult | None
    cache_key: str

    @property
    def passed(self) -> bool:
        return self.check is not None and self.check.passed

    def to_json(self, redact: Callable[[str], str]) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "trial": self.trial,
            "passed": self.passed,
            **answer_fields(self.outcome.response, redact),
            "error": self.outcome.error,
            "cache_key": self.cache_key,
        }


class SkillCheckFailed(Exception):
    def __init__(self, results: list[ConditionResult], needed: int):
        super().__init__("skill check failed")
        self.results = results
        self.needed = needed


class SkillCallFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SkillItem(pytest.Item):
    def __init__(self, *, suite: Suite, case: Case, spec: ModelSpec | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case
        self.spec = spec
        self.add_marker(pytest.mark.skill)

    @property
    def registry(self) -> CheckRegistry:
        """The check kinds known where this item's file lives (its conftests included)."""
        parent = self.parent
        return parent.registry if isinstance(parent, SkillFile) else self.run.registry

    @property
    def run(self) -> SkillRun:
        from pytest_skills.session import RUN_KEY

        return self.config.stash[RUN_KEY]

    @property
    def label(self) -> str:
        return f"{self.parent.nodeid if self.parent else self.path.name}::{self.case.id}"

    @cached_property
    def planned_calls(self) -> list[tuple[str, Call]]:
        """Every model call this item needs, by condition, in trial order."""
        if self.spec is None:
            return []
        settings = self.run.settings
        sampling = Sampling().merged(self.suite.defaults).merged(self.case.sampling)
        conditions = CONDITIONS if settings.baseline else CONDITIONS[:1]
        planned = []
        for condition in conditions:
            for trial in range(settings.trials):
                request = request_for(
                    self.spec,
                    system=self.suite.skill.block if condition == "with_skill" else None,
                    prompt=self.case.prompt,
                    sampling=sampling,
                    trial=trial,
                )
                planned.append((condition, Call(request, self.spec, self.label)))
        return planned

    def runtest(self) -> None:
        assert self.spec is not None
        run = self.run
        results = []
        for condition, call in self.planned_calls:
            outcome = run.runner.outcome(call)
            for warning in run.call_warnings(self.spec, outcome):
                self.warn(pytest.PytestWarning(warning))
            check = None
            if outcome.response is not None:
                try:
                    check = self.registry.evaluate(self.case.check, outcome.response.text)
                except CheckError as error:  # e.g. no judge model: an error, not a verdict
                    outcome = replace(outcome, error=error.message, replay_miss=error.replay_miss)
            results.append(
                ConditionResult(condition, call.request.trial, outcome, check, call.request.key)
            )
        self.user_properties.extend(self.properties(results))

        with_skill = [r for r in results if r.condition == "with_skill"]
        errors = [r for r in with_skill if r.outcome.error]
        if errors:
            raise SkillCallFailed(self.describe_error(errors[0].outcome))
        needed = run.settings.required_passes
        if sum(r.passed for r in with_skill) < needed:
            # The failure repr shows the answer; a report section would print it twice.
            raise SkillCheckFailed(with_skill, needed)

    def properties(self, results: list[ConditionResult]) -> list[tuple[str, str]]:
        """Facts for reports: flat ones for JUnit readers, and the full record as JSON."""
        flat = []
        for condition in CONDITIONS:
            judged = [r for r in results if r.condition == condition and r.check is not None]
            if judged:
                flat.append(
                    (f"skill_{condition}", f"{sum(r.passed for r in judged)}/{len(judged)}")
                )
        flat.append(
            (
                "skill_replayed",
                str(
                    all(
                        r.outcome.response is not None and r.outcome.response.cached
                        for r in results
                    )
                ).lower(),
            )
        )
        return [*flat, (RESULT_PROPERTY, json.dumps(self.record(results), sort_keys=True))]

    def record(self, results: list[ConditionResult]) -> dict[str, Any]:
        assert self.spec is not None
        return {
            "nodeid": self.nodeid,
            "skill": self.suite.skill.name,
            "case": self.case.id,
            "file": self.parent.nodeid if self.parent else "",
            "model": self.spec.name,
            "resolved": self.spec.resolved,
            "results": [r.to_json(self.run.redact) for r in results],
        }

    def describe_error(self, outcome: Outcome) -> str:
        message = outcome.error or "unknown error"
        if outcome.replay_miss:
            assert self.spec is not None
            message += replay_hint(self.nodeid, self.spec.name)
        return message

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if isinstance(error, SkillCallFailed):
            return f"{self.spec.name if self.spec else ''}: {error.message}"
        if isinstance(error, SkillCheckFailed):
            return FailureRepr(self, error)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        return (
            self.path,
            line,
            f"skill case {self.case.id} [{self.spec.name if self.spec else '-'}]",
        )


class FailureRepr(TerminalRepr):
    """Which check failed, expected against actual, then the full answer."""

    def __init__(self, item: SkillItem, error: SkillCheckFailed):
        self.item = item
        self.error = error

    def toterminal(self, tw: TerminalWriter) -> None:
        results = self.error.results
        passed = sum(r.passed for r in results)
        model = self.item.spec.name if self.item.spec else ""
        tw.line(
            f"{model}: with the skill, {passed} of {len(results)} trial(s) passed "
            f"(needed {self.error.needed})",
            bold=True,
        )
        for result in results:
            if result.passed or result.check is None:
                continue
            prefix = f"trial {result.trial}: " if len(results) > 1 else ""
            for leaf in result.check.failures():
                tw.line(f"  {prefix}{leaf.kind} failed", red=True)
                tw.line(f"    expected: {leaf.expected}")
                tw.line(f"    actual:   {leaf.actual}")
        first = next((r for r in results if not r.passed and r.outcome.response), None)
        if first is not None and first.outcome.response is not None:
            tw.sep(
                "-",
                "answer with the skill" + (" (replayed)" if first.outcome.response.cached else ""),
            )
            tw.line(self.item.run.redact(first.outcome.response.text))
        location = f"{self.item.suite.path}:{self.item.case.line or ''}"
        tw.line("")
        tw.line(f"case {self.item.case.id} defined at {location}")
