"""The record of one test's answers: what every producer writes and every report reads.

Skill-file items, ``skill_model`` tests and the judge all build :class:`CallResult`
and :class:`ItemRecord` through :func:`call_result`; reports, statistics and the
cache's unused-entry count read them. Under xdist a record crosses to the controller
as JSON (:meth:`ItemRecord.to_json` / :meth:`ItemRecord.from_json`); in one process
it stays typed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_skills.checks.registry import CheckResult
from pytest_skills.models import ErrorKind, Response, Usage

CONDITIONS = ("with_skill", "baseline")
#: The report property (JUnit, and the xdist transport) holding a record as JSON.
RESULT_PROPERTY = "pytest_skills"
#: Values of :attr:`CallResult.graded_by`.
GRADED_BY_CHECK = "check"
GRADED_BY_OUTCOME = "test outcome"


@dataclass(frozen=True)
class CallResult:
    """One answer (or failed call) of one condition and trial."""

    condition: str
    trial: int
    #: ``None`` when the answer was not graded or the call failed.
    passed: bool | None
    graded_by: str | None
    output: str | None
    cached: bool
    usage: Usage | None
    latency_s: float | None
    error: str | None
    cache_key: str
    #: Why there is no verdict, when ``error`` is set.
    error_kind: ErrorKind | None = None
    #: What the checks made of the answer: one tree per check applied (a skill item
    #: applies one; a ``skill_model`` test one per ``Answer.check``), secrets redacted.
    checks: tuple[CheckResult, ...] = ()
    #: The reasoning the model showed apart from its answer (never graded).
    reasoning: str | None = None
    #: The model id the provider says answered (an alias's snapshot, a GGUF file name).
    reported_model: str | None = None
    #: Parameters the server refused this run and what was sent instead, if any.
    adapted: str | None = None
    #: The on-demand arm: the skills the model activated (None in the other arms), and
    #: its trajectory (turns, steps, files read, tool errors).
    activated: tuple[str, ...] | None = None
    trajectory: Mapping[str, Any] | None = None
    #: The provider batch that answered (``--skill-batch``): priced at the batch rate.
    batch: str | None = None

    @property
    def ok(self) -> bool:
        """The call produced an answer (graded or not)."""
        return self.error is None

    @property
    def graded(self) -> bool:
        """An answer with a verdict: it counts in the pass rates."""
        return self.error is None and self.passed is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "trial": self.trial,
            "passed": self.passed,
            "graded_by": self.graded_by,
            "output": self.output,
            "cached": self.cached,
            "usage": self.usage.as_dict() if self.usage is not None else None,
            "latency_s": self.latency_s,
            "error": self.error,
            "error_kind": self.error_kind.value if self.error_kind is not None else None,
            "cache_key": self.cache_key,
            "checks": [check_to_json(check) for check in self.checks],
            "reasoning": self.reasoning,
            "reported_model": self.reported_model,
            "adapted": self.adapted,
            "batch": self.batch,
            **(
                {"activated": list(self.activated), "trajectory": self.trajectory}
                if self.activated is not None
                else {}
            ),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallResult:
        usage = data.get("usage")
        return cls(
            condition=data["condition"],
            trial=int(data["trial"]),
            passed=data.get("passed"),
            graded_by=data.get("graded_by"),
            output=data.get("output"),
            cached=bool(data.get("cached")),
            usage=Usage(**usage) if usage is not None else None,
            latency_s=data.get("latency_s"),
            error=data.get("error"),
            cache_key=data["cache_key"],
            error_kind=ErrorKind(data["error_kind"]) if data.get("error_kind") else None,
            checks=tuple(check_from_json(c) for c in data.get("checks") or ()),
            reasoning=data.get("reasoning"),
            reported_model=data.get("reported_model"),
            adapted=data.get("adapted"),
            batch=data.get("batch"),
            activated=tuple(data["activated"]) if data.get("activated") is not None else None,
            trajectory=data.get("trajectory"),
        )


def _batch_of(response: Response | None) -> str | None:
    batch = response.extra.get("batch") if response is not None else None
    return batch if isinstance(batch, str) and batch else None


def check_to_json(result: CheckResult) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "passed": result.passed,
        "expected": result.expected,
        "actual": result.actual,
        "children": [check_to_json(child) for child in result.children],
        "marks": list(result.marks),
    }


def check_from_json(data: Mapping[str, Any]) -> CheckResult:
    return CheckResult(
        kind=data["kind"],
        passed=bool(data["passed"]),
        expected=data["expected"],
        actual=data["actual"],
        children=tuple(check_from_json(child) for child in data.get("children") or ()),
        marks=tuple(str(text) for text in data.get("marks") or ()),
    )


def _redacted_check(result: CheckResult, redact: Callable[[str], str]) -> CheckResult:
    # ``actual`` quotes the answer (and the judge's reasoning): it may hold a secret too.
    return CheckResult(
        kind=result.kind,
        passed=result.passed,
        expected=redact(result.expected),
        actual=redact(result.actual),
        children=tuple(_redacted_check(child, redact) for child in result.children),
        marks=tuple(redact(text) for text in result.marks),
    )


def call_result(
    *,
    condition: str,
    trial: int,
    cache_key: str,
    response: Response | None,
    error: str | None,
    passed: bool | None,
    graded_by: str | None,
    redact: Callable[[str], str],
    error_kind: ErrorKind | None = None,
    checks: Iterable[CheckResult] = (),
    activated: tuple[str, ...] | None = None,
    trajectory: Mapping[str, Any] | None = None,
) -> CallResult:
    """The one way to build a :class:`CallResult`: texts redacted, a failed call ungraded."""
    failed = error is not None or response is None
    return CallResult(
        condition=condition,
        trial=trial,
        passed=None if failed else passed,
        graded_by=None if failed or passed is None else graded_by,
        output=redact(response.text) if response is not None else None,
        cached=response.cached if response is not None else False,
        usage=response.usage if response is not None else None,
        latency_s=response.latency_s if response is not None else None,
        error=redact(error) if error is not None else (None if response else "no answer"),
        cache_key=cache_key,
        error_kind=(error_kind or ErrorKind.CALL_FAILED) if failed else None,
        checks=tuple(_redacted_check(check, redact) for check in checks),
        reasoning=redact(response.reasoning) if response and response.reasoning else None,
        reported_model=response.reported_model if response is not None else None,
        adapted=response.extra.get("adapted") if response is not None else None,
        batch=_batch_of(response),
        activated=activated,
        trajectory=trajectory,
    )


@dataclass(frozen=True)
class ItemRecord:
    """Every answer one test (one case on one model) got."""

    nodeid: str
    skill: str
    case: str
    #: The node id of the test's file: the cache's unused-entry count is per file.
    file: str
    model: str
    resolved: str
    results: tuple[CallResult, ...]
    #: What the test file says about the case beyond what was run (keys pytest-skills
    #: does not use, by "case" and "file").
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Checks that were not graded (``judge`` checks without a judge model).
    not_graded: tuple[str, ...] = ()
    #: What the model was asked: a skill case's input (its context files apart), or the
    #: prompts a ``skill_model`` test asked (files included), secrets redacted.
    input: str = ""
    #: A skill case's context files, ``(name, content)``, in the order of the prompt.
    context_files: tuple[tuple[str, str], ...] = ()
    #: The reason given when the test was expected to fail (``xfail``), "" for none;
    #: None when it was not.
    xfail: str | None = None

    @property
    def cache_keys(self) -> set[str]:
        return {result.cache_key for result in self.results}

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "skill": self.skill,
            "case": self.case,
            "file": self.file,
            "model": self.model,
            "resolved": self.resolved,
            "results": [result.to_json() for result in self.results],
            "metadata": dict(self.metadata),
            "not_graded": list(self.not_graded),
            "input": self.input,
            "context_files": [list(pair) for pair in self.context_files],
            "xfail": self.xfail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemRecord:
        return cls(
            nodeid=data["nodeid"],
            skill=data["skill"],
            case=data["case"],
            file=data["file"],
            model=data["model"],
            resolved=data["resolved"],
            results=tuple(CallResult.from_json(r) for r in data["results"]),
            metadata=data.get("metadata") or {},
            not_graded=tuple(data.get("not_graded") or ()),
            input=data.get("input") or "",
            context_files=tuple(
                (str(name), str(content)) for name, content in data.get("context_files") or ()
            ),
            xfail=data.get("xfail"),
        )


def sorted_records(records: Iterable[ItemRecord]) -> list[ItemRecord]:
    """Records in a fixed order, so figures and reports never depend on arrival order."""
    return sorted(records, key=lambda r: (r.file, r.case, r.model, r.nodeid))


def to_properties(record: ItemRecord, *, whole: bool = True) -> list[tuple[str, str]]:
    """Facts for reports: flat ones for JUnit readers, and (``whole``) the full record
    as JSON, about a kilobyte per item."""
    flat = []
    for condition, name in _FLAT_NAMES.items():
        graded = [r for r in record.results if r.condition == condition and r.graded]
        if graded:
            passed = sum(bool(r.passed) for r in graded)
            flat.append(_flat(name, f"{passed}/{len(graded)}"))
    flat.append(
        _flat("skill_replayed", "true" if all(r.cached for r in record.results) else "false")
    )
    if not whole:
        return flat
    compact = json.dumps(record.to_json(), sort_keys=True, separators=(",", ":"))
    return [*flat, (RESULT_PROPERTY, compact)]


_FLAT_NAMES = {condition: f"skill_{condition}" for condition in CONDITIONS}


@functools.lru_cache(maxsize=1024)
def _flat(name: str, value: str) -> tuple[str, str]:
    # Shared: 10,000 items hold a handful of distinct ("skill_with_skill", "1/1") pairs.
    return (name, value)


def from_properties(properties: Iterable[tuple[str, object]]) -> ItemRecord | None:
    """The record a worker's report carries (under xdist), if any."""
    for name, value in properties:
        if name == RESULT_PROPERTY:
            data = value if isinstance(value, dict) else json.loads(str(value))
            return ItemRecord.from_json(data)
    return None
