"""pytest collectors: a :class:`SkillFile` per test file (and a :class:`ScenarioNode` per
upskill scenario), holding a :class:`~pytest_skills.skill_item.SkillItem` per (case, model)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_skills.arms import Arm, Unavailable
from pytest_skills.checks import CheckRegistry
from pytest_skills.checks.judge import judge_unavailable, without_judges
from pytest_skills.context import RunContext
from pytest_skills.errors import SkillsError
from pytest_skills.formats import (
    SCENARIOS,
    Case,
    FormatError,
    Scenario,
    Source,
    Suite,
    load_scenario,
    load_suite,
    open_source,
    read_scenarios,
)
from pytest_skills.formats.notices import Notice, line_of
from pytest_skills.report.text import id_text
from pytest_skills.settings import NO_MODEL_REASON
from pytest_skills.skill_item import Grading, SkillItem

T = TypeVar("T")

NO_JUDGE_SKIP = (
    "every check of this case needs a judge model: name one with --skill-judge-model SPEC "
    "(or ini skill_judge_model)"
)


class SkillCollectError(SkillsError):
    """A test file that cannot be collected; shown as a one-line collection error."""


def _loaded(load: Callable[..., T], *args: Any) -> T:
    """``load(*args)``, its FormatError as the one-line collection error it is."""
    try:
        return load(*args)
    except FormatError as error:
        raise SkillCollectError(str(error)) from None


def not_collected_lines(paths: Iterable[Path], start: Path) -> list[str]:
    """The header lines naming files that look like skill test files and hold no cases."""
    shown = sorted({os.path.relpath(path, start) for path in paths})
    if not shown:
        return []
    return [f"skills: not collected, no test cases in: {', '.join(shown)}"]


def warn_at(path: Path, warning: str) -> None:
    """A warning about a file, shown at ``path:line`` for the line it concerns (the
    file's first line when it names none), not where pytest's node for the file starts."""
    warnings.warn_explicit(
        pytest.PytestWarning(str(warning)), None, str(path), line_of(warning) or 1
    )


def arm_systems(context: RunContext, suite: Suite) -> tuple[dict[Arm, str | None], list[str]]:
    """Each arm's system prompt for ``suite``, and why the arms left out are."""
    systems: dict[Arm, str | None] = {}
    reasons = []
    for arm in context.settings.arms:
        system = context.arm_prompts.system(arm, suite)
        if isinstance(system, Unavailable):
            reasons.append(system.reason)
        else:
            systems[arm] = system
    return systems, reasons


def _grading(case: Case, judge_missing: bool) -> Grading:
    if case.skip is not None or case.check is None:
        return Grading(None, skip=case.skip or "nothing to grade")
    if not judge_missing:
        return Grading(case.check)
    check, ungraded = without_judges(case.check)
    texts = tuple(f"judge: {rubric.rubric}" for rubric in ungraded)
    return Grading(check, texts, None if check is not None else NO_JUDGE_SKIP)


class _CaseCollector:
    """Turns a suite into items: one per case and model, with its warnings once."""

    context: RunContext

    def _items(self, suite: Suite, registry: CheckRegistry) -> Iterator[pytest.Item]:
        assert isinstance(self, pytest.Collector)
        for warning in suite.warnings:
            warn_at(suite.path, warning)
        for skill in suite.skills:
            for warning in skill.warnings:
                warn_at(skill.path, warning)
        judge_missing = judge_unavailable(registry)
        gradings = [_grading(case, judge_missing) for case in suite.cases]
        partial = [
            case
            for case, grading in zip(suite.cases, gradings, strict=True)
            if grading.not_graded and grading.check is not None
        ]
        if partial:
            named = ", ".join(repr(case.id) for case in partial[:5])
            more = f" and {len(partial) - 5} more" if len(partial) > 5 else ""
            message = (
                f"{suite.path}: {len(partial)} case(s) have judge checks that go ungraded "
                f"(no judge model): {named}{more}; their other checks decide. Name one with "
                "--skill-judge-model SPEC"
            )
            warn_at(suite.path, Notice(message, partial[0].line))
        systems, unavailable = arm_systems(self.context, suite)
        for reason in unavailable:
            warn_at(suite.path, f"{reason}; those answers are not asked for")
        models = self.context.settings.models
        for case, grading in zip(suite.cases, gradings, strict=True):
            for spec in models or (None,):
                name = id_text(case.id) if spec is None else f"{id_text(case.id)}[{spec.name}]"
                item = SkillItem.from_parent(
                    self,
                    name=name,
                    # Given as text, so pytest parses it the way it parses ids from the
                    # command line and from --lf's cache: name case.id, params the model.
                    nodeid=f"{self.nodeid}::{name}",
                    suite=suite,
                    case=case,
                    spec=spec,
                    registry=registry,
                    grading=grading,
                    systems=systems,
                )
                if spec is None:
                    item.add_marker(pytest.mark.skip(reason=NO_MODEL_REASON))
                elif grading.skip is not None:
                    item.add_marker(pytest.mark.skip(reason=grading.skip))
                elif case.xfail:
                    item.add_marker(pytest.mark.xfail(reason=case.xfail, strict=False))
                yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SkillCollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[misc]


class SkillFile(_CaseCollector, pytest.File):
    """A skill test file (any format): one item per case and model; for an upskill
    scenario manifest, one :class:`ScenarioNode` per scenario."""

    def __init__(self, *, context: RunContext, source: Source | FormatError, **kwargs: Any):
        super().__init__(**kwargs)
        self.context = context
        #: The file's data, or why it could not be read (reported when collected);
        #: None once its cases are loaded.
        self.opened: Source | FormatError | None = source

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        source = self.opened
        if source is None:  # collected before: its data was let go, so read it again
            try:
                source = open_source(self.path)
            except FormatError as error:
                source = error
            if source is None:
                return
        if isinstance(source, FormatError):
            raise SkillCollectError(str(source))
        if source.format != SCENARIOS:
            registry = self.context.registries.for_node(self)
            suite = _loaded(load_suite, source, registry)
            # The raw data and its line map weigh as much as the cases (5 MB for
            # 10,000 of them) and nothing reads them once the suite is loaded.
            self.opened = source = None
            yield from self._items(suite, registry)
            return
        scenarios, notes = _loaded(read_scenarios, source)
        for warning in notes:
            warn_at(self.path, warning)
        for scenario in scenarios:
            yield ScenarioNode.from_parent(self, name=scenario.id, source=source, scenario=scenario)


class ScenarioNode(_CaseCollector, pytest.Collector):
    """One scenario of an upskill manifest: its tests file against its skills.

    Items read ``manifest::scenario-id::case[model]``; a scenario that cannot load
    (a skill directory missing) is a collection error of its own.
    """

    def __init__(self, *, source: Source, scenario: Scenario, **kwargs: Any):
        super().__init__(**kwargs)
        parent = self.parent
        assert isinstance(parent, SkillFile)
        self.context = parent.context
        self.source = source
        self.scenario = scenario

    def collect(self) -> Iterator[pytest.Item]:
        registry = self.context.registries.for_node(self)
        suite = _loaded(load_scenario, self.source, self.scenario, registry)
        yield from self._items(suite, registry)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.scenario.line - 1 if self.scenario.line else None
        return self.path, line, f"scenario {self.scenario.id}"


#: Where an item's short failure points for the fix shared by every item it touches.
