"""The ``judge`` check kind: a rubric graded by the judge model.

``expect: {judge: "rubric"}`` or ``{judge: {rubric: ..., reference: ...}}``. The judge
model (``--skill-judge-model`` / ini ``skill_judge_model``) gets the rubric, the
reference answer if any and the answer, and must end its reply with ``VERDICT: PASS``
or ``VERDICT: FAIL``. Its calls are ordinary requests to the judge model through the
run's runner, at temperature 0, so they are cached and replayed like every answer.

Without a judge model, or when the judge's call fails, the check raises
:class:`~pytest_skills.checks.CheckError`: an error on the item, never a verdict.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_skills.checks.registry import (
    COMBINATORS,
    Check,
    CheckError,
    CheckRegistry,
    CheckResult,
    unfenced,
)
from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.models import ModelSpec, Sampling, request_for

#: Asks a model one call and returns how it went (the run's runner, narrowed).
AskModel = Callable[[Call], Outcome]

JUDGE_SAMPLING = Sampling(temperature=0.0, max_tokens=1024)

JUDGE_SYSTEM = """\
You grade an answer against a rubric, strictly and fairly.
You get the rubric, possibly the task the answer responds to and a reference answer, and \
the answer to grade. Judge only whether the answer satisfies the rubric; when a reference \
is given, use it as what a correct answer looks like, not as wording to match.
Explain your reasoning in a few sentences. Then end your reply with exactly one final \
line, either
VERDICT: PASS
or
VERDICT: FAIL"""

NO_JUDGE = (
    "no judge model: this case has 'judge' checks; name the model that grades them with "
    "--skill-judge-model SPEC or ini skill_judge_model"
)

_KEYS = frozenset({"rubric", "reference", "task"})
_VERDICT = re.compile(
    r"\bverdict\b[\"']?\s*(?:is\s+)?[:=\-\u2013\u2014]?\s*[\"'\[(]?\s*(pass|fail)(?:ed|es)?\b",
    re.IGNORECASE,
)
_MARKDOWN = re.compile(r"[*_`#>]")
_REASON_KEYS = ("reasoning", "reason", "explanation", "rationale")


@dataclass(frozen=True)
class Rubric:
    """The value of a ``judge`` check."""

    rubric: str
    reference: str | None = None
    #: The task the answer responds to, when known (evals.json gives its prompt).
    task: str | None = None


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"'{name}' must be a string")
    if not str(value).strip():
        raise ValueError(f"'{name}' is empty")
    return str(value)


def parse_rubric(value: Any) -> Rubric:
    """The ``judge`` kind's validator: a rubric string, or {rubric, reference}."""
    if isinstance(value, Rubric):
        return value
    if isinstance(value, str):
        return Rubric(_text(value, "judge"))
    if not isinstance(value, Mapping):
        raise ValueError("expected a rubric string or a mapping {rubric: ..., reference: ...}")
    unknown = sorted(str(key) for key in value if key not in _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_KEYS))}")
    if "rubric" not in value:
        raise ValueError("a mapping needs 'rubric': what a passing answer does")
    return Rubric(
        rubric=_text(value["rubric"], "rubric"),
        reference=_text(value["reference"], "reference") if value.get("reference") else None,
        task=_text(value["task"], "task") if value.get("task") else None,
    )


def judge_prompt(rubric: Rubric, answer: str) -> str:
    parts = []
    if rubric.task:
        parts.append(f"## Task\n\n{rubric.task.strip()}")
    parts.append(f"## Rubric\n\n{rubric.rubric.strip()}")
    if rubric.reference:
        parts.append(f"## Reference answer\n\n{rubric.reference.strip()}")
    parts.append(f"## Answer to grade\n\n{answer.strip()}")
    parts.append("End with the line VERDICT: PASS or VERDICT: FAIL.")
    return "\n\n".join(parts)


def _json_verdict(text: str) -> tuple[bool | None, str] | None:
    try:
        data = json.loads(unfenced(text))
    except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
        return None
    if not isinstance(data, Mapping):
        return None
    fields = {str(key).lower(): value for key, value in data.items()}
    verdict = fields.get("verdict")
    word = verdict.strip().strip(".!").lower() if isinstance(verdict, str) else None
    reason = next((str(fields[k]) for k in _REASON_KEYS if fields.get(k)), "")
    if word in ("pass", "passed"):
        return True, reason
    if word in ("fail", "failed"):
        return False, reason
    return None


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """``(passed, reasoning)`` from a judge's reply; ``passed`` is None without a verdict.

    The last line naming a verdict decides (``VERDICT: PASS``, any case, markdown bold,
    trailing punctuation); a reply that is a JSON object ``{"verdict": "pass", ...}``
    (fenced or not) works too. The reasoning is the reply without the verdict line.
    """
    parsed = _json_verdict(text.strip())
    if parsed is not None:
        return parsed
    lines = text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        matches = list(_VERDICT.finditer(_MARKDOWN.sub("", lines[index])))
        if matches:
            passed = matches[-1].group(1).lower() == "pass"
            reasoning = "\n".join(lines[:index] + lines[index + 1 :]).strip()
            return passed, reasoning
    return None, text.strip()


def _indented(text: str) -> str:
    return "\n".join("      " + line for line in text.strip().splitlines()) or "      (empty)"


class JudgeCheck:
    """The evaluator of ``judge`` checks: grades through ``ask`` with ``judge_model``."""

    def __init__(self, judge_model: ModelSpec | None, ask: AskModel):
        self.judge_model = judge_model
        self.ask = ask

    def call(self, rubric: Rubric, answer: str) -> Call:
        spec = self.judge_model
        if spec is None:
            raise CheckError(NO_JUDGE)
        request = request_for(
            spec, system=JUDGE_SYSTEM, prompt=judge_prompt(rubric, answer), sampling=JUDGE_SAMPLING
        )
        digest = hashlib.sha256(rubric.rubric.encode("utf-8")).hexdigest()[:12]
        # Not a test file's label: the unused-entry count and prune leave judge entries alone.
        return Call(request, spec, f"judge::{digest}")

    def gradings(self, check: Check, answer: str) -> list[Call]:
        """The judge calls that grading ``answer`` on ``check`` will make (to plan them)."""
        if self.judge_model is None:
            return []
        return [self.call(rubric, answer) for rubric in rubrics(check)]

    def __call__(self, rubric: Rubric, answer: str) -> CheckResult:
        call = self.call(rubric, answer)
        name = call.spec.name
        outcome = self.ask(call)
        if outcome.response is None:
            raise CheckError(f"the judge {name} could not grade: {outcome.error}")
        verdict, reasoning = parse_verdict(outcome.response.text)
        expected = f"the judge ({name}) passes it on: {rubric.rubric.strip()}"
        if verdict is None:
            return CheckResult(
                "judge",
                False,
                expected,
                "the judge gave no verdict (its reply must end with 'VERDICT: PASS' or "
                f"'VERDICT: FAIL'); it said:\n{_indented(outcome.response.text)}",
            )
        label = "PASS" if verdict else "FAIL"
        return CheckResult(
            "judge",
            verdict,
            expected,
            f"{label}; the judge's reasoning:\n{_indented(reasoning)}" if reasoning else label,
        )


def register_judge_check(registry: CheckRegistry, judge: JudgeCheck) -> None:
    """Add the built-in ``judge`` kind unless a plugin registered its own."""
    if "judge" not in registry:
        registry.register(
            "judge", judge, validate=parse_rubric, description="a rubric graded by the judge model"
        )


def judge_unavailable(registry: CheckRegistry) -> bool:
    """The built-in ``judge`` kind is in force and has no model to grade with."""
    judge = registry.evaluator("judge")
    return isinstance(judge, JudgeCheck) and judge.judge_model is None


def without_judges(check: Check) -> tuple[Check | None, tuple[Rubric, ...]]:
    """``check`` without its ``judge`` checks, and the rubrics left ungraded.

    An ``any`` that holds a judge goes as a whole: without the judge its verdict
    could be wrong. None when nothing but judges was there.
    """
    if check.kind == "judge" or (check.kind == "any" and any(True for _ in rubrics(check))):
        return None, tuple(rubrics(check))
    if check.kind != "all":
        return check, ()
    kept: list[Check] = []
    dropped: list[Rubric] = []
    for child in check.value:
        rest, ungraded = without_judges(child)
        dropped.extend(ungraded)
        if rest is not None:
            kept.append(rest)
    if not kept:
        return None, tuple(dropped)
    pruned = kept[0] if len(kept) == 1 else Check("all", tuple(kept), check.path)
    return pruned, tuple(dropped)


def rubrics(check: Check) -> Iterator[Rubric]:
    """Every rubric in a check tree."""
    if check.kind in COMBINATORS:
        for child in check.value:
            yield from rubrics(child)
    elif check.kind == "judge" and isinstance(check.value, Rubric):
        yield check.value
