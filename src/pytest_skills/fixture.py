"""The ``skill_model`` fixture: ask the configured models from ordinary test functions.

A test that uses the fixture runs once per configured model (id ``[model-name]``) and
is marked ``skill``; with no model configured it is skipped with the reason skill items
give. ``skill_model.ask(prompt)`` asks with the skill named by
``@pytest.mark.skill("path/to/skill")``, ``ask(prompt, skill=path)`` with another one,
``ask(prompt, baseline=True)`` without any. Calls go through the run's runner, so the
cache, its modes and de-duplication apply as for skill items.

Each test's answers become one record for the summary and the JSON report, with the
shape of :meth:`SkillItem.record`. What ``passed`` means for each answer:

* an answer judged with :meth:`Answer.check` (or :meth:`Answer.require`): whether all
  its checks passed;
* an unjudged with-skill answer: the test's outcome;
* an unjudged baseline answer: the checks applied to the with-skill answer to the same
  prompt, run on the baseline's text; when there are none, ``null``: the answer is
  recorded (tokens, latency) but left out of the pass rates and the lift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_skills.checks import Check, CheckError, CheckRegistry, CheckResult, CheckSpecError
from pytest_skills.checks.registry import clip
from pytest_skills.context import RunContext
from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.formats import FormatError, Skill, load_skill, user_message
from pytest_skills.models import ErrorKind, ModelSpec, Response, Sampling, Usage, request_for
from pytest_skills.report.records import (
    GRADED_BY_CHECK,
    GRADED_BY_OUTCOME,
    CallResult,
    ItemRecord,
    call_result,
)
from pytest_skills.settings import NO_MODEL_REASON
from pytest_skills.skill_item import short_error
from pytest_skills.stash import MARKER

_SKILLS_KEY = pytest.StashKey[dict[Path, Skill]]()


# --- answers -------------------------------------------------------------------------------


@dataclass(eq=False)
class Answer:
    """A model's answer to :meth:`SkillModel.ask`."""

    text: str
    response: Response
    model: str
    #: ``"with_skill"`` or ``"baseline"``.
    condition: str
    prompt: str
    skill: Skill | None
    _registry: CheckRegistry = field(repr=False)
    #: Every check applied with :meth:`check`, with its result.
    checks: list[tuple[Check, CheckResult]] = field(default_factory=list, repr=False)

    @property
    def usage(self) -> Usage:
        return self.response.usage

    @property
    def latency_s(self) -> float:
        return self.response.latency_s

    @property
    def replayed(self) -> bool:
        """True when the answer came from the cache."""
        return self.response.cached

    cached = replayed

    def __str__(self) -> str:
        return self.text

    def check(self, expect: Mapping[str, Any]) -> CheckResult:
        """Grade the answer with an ``expect`` mapping (``{"contains": "9.0"}``, ``{"judge":
        "..."}``, …); the result is recorded as this answer's pass/fail."""
        registry = self._registry
        try:
            parsed = registry.parse(expect)
        except CheckSpecError as error:
            raise ValueError(
                f"check {dict(expect) if isinstance(expect, Mapping) else expect!r}: {error}"
            ) from None
        try:
            result = registry.evaluate(parsed, self.text)
        except CheckError as error:
            pytest.fail(f"{self.model}: {error.message}", pytrace=False)
        self.checks.append((parsed, result))
        return result

    def require(self, expect: Mapping[str, Any]) -> CheckResult:
        """:meth:`check`, failing the test with what was expected when it does not pass."""
        result = self.check(expect)
        if not result.passed:
            lines = [f"{self.model}: the {self.condition.replace('_', ' ')} answer failed"]
            for leaf in result.failures():
                lines += [
                    f"  {leaf.kind} failed",
                    f"    expected: {leaf.expected}",
                    f"    actual:   {leaf.actual}",
                ]
            lines += ["answer" + (" (replayed)" if self.replayed else "") + ":", clip(self.text)]
            pytest.fail("\n".join(lines), pytrace=False)
        return result


@dataclass
class _Asked:
    condition: str
    prompt: str
    call: Call
    outcome: Outcome
    answer: Answer | None


# --- the fixture's object ---------------------------------------------------------------------


class SkillModel:
    """One configured model, as seen by one test (the ``skill_model`` fixture)."""

    def __init__(self, spec: ModelSpec, context: RunContext, item: pytest.Item):
        self.spec = spec
        self.context = context
        self.item = item
        #: The check kinds of the test's directory (its conftests' included).
        self.registry = context.registries.for_node(item)
        self.asked: list[_Asked] = []

    @property
    def name(self) -> str:
        """The model's name as the user typed it."""
        return self.spec.name

    def __repr__(self) -> str:
        return f"<SkillModel {self.spec.name}>"

    def ask(
        self,
        prompt: str,
        skill: str | Path | Skill | None = None,
        *,
        baseline: bool = False,
        files: Mapping[str, str] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        trial: int = 0,
        reasoning: str | None = None,
    ) -> Answer:
        """Ask the model; with the skill (``skill=`` or the ``skill`` marker's) unless
        ``baseline`` is true. ``files`` are appended as fenced blocks, like a case's
        context files. A failed call (missing key, replay miss) fails the test."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("ask() needs a non-empty prompt string")
        chosen = None if baseline else self._skill(skill)
        text = user_message(prompt, tuple((str(k), str(v)) for k, v in (files or {}).items()))
        overrides = {
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": seed,
            "reasoning": reasoning,
        }
        run = Sampling(reasoning=self.context.settings.reasoning)
        sampling = run.merged({k: v for k, v in overrides.items() if v is not None})
        request = request_for(
            self.spec,
            prompt=text,
            sampling=sampling,
            trial=trial,
            system=chosen.block if chosen else None,
        )
        call = Call(request, self.spec, case_label(self.item))
        outcome = self.context.calls.ask(call)
        for warning in outcome.warnings:
            self.item.warn(pytest.PytestWarning(warning))
        condition = "baseline" if baseline else "with_skill"
        answer = None
        if outcome.response is not None:
            answer = Answer(
                outcome.response.text,
                outcome.response,
                self.spec.name,
                condition,
                text,
                chosen,
                self.registry,
            )
        self.asked.append(_Asked(condition, text, call, outcome, answer))
        if answer is None:
            pytest.fail(self._describe(outcome), pytrace=False)
        return answer

    def _describe(self, outcome: Outcome) -> str:
        kind = outcome.kind or ErrorKind.CALL_FAILED
        return f"{self.spec.name}: {short_error(outcome.error or '', kind)}"

    def _skill(self, skill: str | Path | Skill | None) -> Skill:
        if isinstance(skill, Skill):
            return skill
        if skill is None:
            skill = marker_path(self.item)
            if skill is None:
                pytest.fail(
                    f"{self.item.nodeid}: no skill to ask with: pass skill='path/to/skill' or "
                    "mark the test with @pytest.mark.skill('path/to/skill') "
                    "(baseline=True asks without one)",
                    pytrace=False,
                )
        return self._load(Path(skill))

    def _load(self, path: Path) -> Skill:
        # Relative to the test file's directory, like the marker's path.
        target = path if path.is_absolute() else self.item.path.parent / path
        if target.is_dir():
            target = target / "SKILL.md"
        target = target.resolve()
        cache = self.item.config.stash.setdefault(_SKILLS_KEY, {})
        if target not in cache:
            if not target.is_file():
                pytest.fail(
                    f"{self.item.nodeid}: no skill at {target}: name a skill directory "
                    "or its SKILL.md, relative to the test file",
                    pytrace=False,
                )
            try:
                cache[target] = load_skill(target)
            except FormatError as error:
                pytest.fail(str(error), pytrace=False)
            for warning in cache[target].warnings:
                self.item.warn(pytest.PytestWarning(f"{target}: {warning}"))
        return cache[target]

    # --- the record ----------------------------------------------------------------------

    def record(self, test_passed: bool | None) -> ItemRecord:
        """This test's answers, as one record like a skill item's."""
        applied: dict[str, list[Check]] = {}
        for asked in self.asked:
            if asked.condition == "with_skill" and asked.answer is not None:
                applied.setdefault(asked.prompt, []).extend(c for c, _ in asked.answer.checks)
        results = tuple(
            self._result(asked, test_passed, applied.get(asked.prompt, [])) for asked in self.asked
        )
        skills = [a.answer.skill for a in self.asked if a.answer and a.answer.skill]
        marked = marker_path(self.item)
        name = skills[0].name if skills else (Path(marked).name if marked else "")
        return ItemRecord(
            nodeid=self.item.nodeid,
            skill=name,
            case=case_name(self.item, self.spec),
            file=module_nodeid(self.item),
            model=self.spec.name,
            resolved=self.spec.resolved,
            results=results,
            input=self.context.redact(
                "\n\n".join(dict.fromkeys(asked.prompt for asked in self.asked))
            ),
        )

    def _result(
        self, asked: _Asked, test_passed: bool | None, same_prompt_checks: list[Check]
    ) -> CallResult:
        answer, error = asked.answer, asked.outcome.error
        kind = asked.outcome.kind
        passed: bool | None = None
        graded_by = None
        checks: list[CheckResult] = []
        if answer is not None and answer.checks:
            checks = [result for _, result in answer.checks]
            passed, graded_by = all(r.passed for r in checks), GRADED_BY_CHECK
        elif answer is not None and asked.condition == "with_skill":
            passed, graded_by = test_passed, GRADED_BY_OUTCOME
        elif answer is not None and same_prompt_checks:
            try:
                checks = [
                    self.registry.evaluate(check, answer.text) for check in same_prompt_checks
                ]
                passed = all(result.passed for result in checks)
                graded_by = GRADED_BY_CHECK
            except CheckError as failure:
                error, kind = failure.message, ErrorKind.NOT_GRADED
        return call_result(
            condition=asked.condition,
            trial=asked.call.request.trial,
            cache_key=asked.call.request.key,
            response=asked.outcome.response,
            error=error,
            passed=passed,
            graded_by=graded_by,
            redact=self.context.redact,
            error_kind=kind,
            checks=checks,
        )


# --- names -----------------------------------------------------------------------------------


def marker_path(item: pytest.Item) -> str | Path | None:
    """The path of the closest ``@pytest.mark.skill(path)``; bare ``skill`` marks are skipped."""
    for mark in item.iter_markers(MARKER):
        value = mark.args[0] if mark.args else mark.kwargs.get("path")
        if value is not None:
            return value
    return None


def module_nodeid(item: pytest.Item) -> str:
    module = item.getparent(pytest.Module)
    return module.nodeid if module is not None else item.nodeid.split("::")[0]


def _test_path(item: pytest.Item) -> str:
    """``Class.test_name`` (without parameters): one name per test function."""
    module = item.getparent(pytest.Module)
    chain = item.listchain()
    start = chain.index(module) + 1 if module in chain else len(chain) - 1
    names = [node.name for node in chain[start:-1]]
    names.append(getattr(item, "originalname", item.name))
    return ".".join(names)


def case_label(item: pytest.Item) -> str:
    """The cache label ``file::Class.test``: replay misses compare with its entries, and the
    unused-entry count knows the file."""
    return f"{module_nodeid(item)}::{_test_path(item)}"


def case_name(item: pytest.Item, spec: ModelSpec) -> str:
    """The test's name without the model: ``test_x`` or ``test_x[other-params]``."""
    base = _test_path(item)
    callspec = getattr(item, "callspec", None)
    ids = callspec.id if callspec is not None else ""
    name = spec.name
    if ids == name:
        ids = ""
    elif ids.endswith(f"-{name}"):
        ids = ids[: -len(name) - 1]
    elif ids.startswith(f"{name}-"):
        ids = ids[len(name) + 1 :]
    elif f"-{name}-" in ids:
        ids = ids.replace(f"-{name}-", "-", 1)
    return f"{base}[{ids}]" if ids else base


# --- made by the plugin's fixture ---------------------------------------------------------


#: The ``skill_model`` of a test that asked models.
MODEL_KEY = pytest.StashKey["SkillModel"]()


def _test_outcome(report: pytest.TestReport) -> bool | None:
    if hasattr(report, "wasxfail"):
        return report.passed  # an expected failure is a failure; an xpass a pass
    if report.passed or report.failed:
        return report.passed
    return None  # skipped


def record_of(item: pytest.Item, report: pytest.TestReport) -> ItemRecord | None:
    """The record of a test that asked models, made when its call phase is reported."""
    model = item.stash.get(MODEL_KEY, None)
    if model is None or not model.asked or report.when != "call":
        return None
    return model.record(_test_outcome(report))


def make_skill_model(request: pytest.FixtureRequest, context: RunContext) -> SkillModel:
    """The ``skill_model`` fixture's value (the fixture itself is in ``plugin.py``)."""
    spec = getattr(request, "param", None)
    if not isinstance(spec, ModelSpec):
        pytest.skip(NO_MODEL_REASON)
    model = SkillModel(spec, context, request.node)
    request.node.stash[MODEL_KEY] = model
    return model
