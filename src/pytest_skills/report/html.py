"""``--skill-html``: every answer of a run on one self-contained page.

The page is rendered from ``templates/report.html.j2`` (with ``report.css`` and
``report.js`` inlined) by Jinja2 with autoescaping on: answers are untrusted text and
reach the page only as escaped text. A Content-Security-Policy that admits only the
page's own style and script, by hash, backs that up: nothing a model writes can run
script or load anything from the network. This module builds the view (plain frozen
data, every figure already computed) and leaves the layout to the template.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pytest_skills.checks.registry import CheckResult
from pytest_skills.report.flakiness import flakiness
from pytest_skills.report.records import CallResult, ItemRecord, sorted_records
from pytest_skills.report.run_info import RunInfo
from pytest_skills.report.summary import ModelSummary
from pytest_skills.report.text import without_surrogates

TEMPLATES = "templates"
TEMPLATE = "report.html.j2"
#: The outcome filter's choices, in the order of its buttons: (value, label).
OUTCOMES = (
    ("all", "all"),
    ("flipped", "flipped"),
    ("helped", "skill helped"),
    ("hurt", "skill hurt"),
    ("both-pass", "both pass"),
    ("both-fail", "both fail"),
    ("error", "failed calls"),
)
#: How a case's outcome on one model reads (see :func:`_outcome`).
OUTCOME_LABELS = {
    "helped": "skill helped",
    "hurt": "skill hurt",
    "both-pass": "both pass",
    "both-fail": "both fail",
    "error": "call failed",
    "ungraded": "not graded",
    "no-baseline": "no baseline",
}


# --- the view --------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One answer (or failed call): one trial of one condition."""

    label: str
    #: "pass", "fail", "error" or "ungraded".
    status: str
    output: str | None
    error: str | None
    checks: tuple[CheckResult, ...]
    #: ``output`` cut into ``(text, mark)`` runs: mark is "pass" for text a passing
    #: check found, "fail" for text that failed one, "" for the rest.
    segments: tuple[tuple[str, str], ...]
    #: The model's reasoning/thinking text, where the backend reports it.
    reasoning: str | None
    cached: bool
    tokens: int | None
    latency_s: float | None
    #: The on-demand arm's agent loop, a line per step (activations, reads, refusals).
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    name: str
    title: str
    attempts: tuple[Attempt, ...]
    passed: int
    graded: int
    #: "pass", "fail", "error" or "ungraded", by the run's pass threshold.
    status: str
    #: Its trials disagree (report/flakiness.py): pass^k is shown beside the status.
    pass_k: float | None = None


@dataclass(frozen=True)
class ModelResult:
    """One case on one model: both conditions side by side."""

    model: str
    resolved: str
    nodeid: str
    #: A key of :data:`OUTCOME_LABELS`.
    outcome: str
    with_skill: Condition
    baseline: Condition | None
    #: The reason the test was expected to fail ("" for none); None when it was not.
    xfail: str | None = None
    #: The other arms' answers (on-demand, placebo, ref:..., ...), in the run's order.
    others: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class CaseView:
    anchor: str
    skill: str
    case: str
    file: str
    input: str
    context_files: tuple[tuple[str, str], ...]
    results: tuple[ModelResult, ...]


@dataclass(frozen=True)
class SkillGroup:
    name: str
    cases: tuple[CaseView, ...]
    #: Per model: outcome -> number of cases.
    tallies: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


@dataclass(frozen=True)
class ForestRow:
    model: str
    y: float
    low_x: float | None
    high_x: float | None
    point_x: float | None
    verdict: str
    text: str


@dataclass(frozen=True)
class ForestPlot:
    width: int
    height: int
    left: int
    right: int
    zero_x: float
    ticks: tuple[tuple[float, str], ...]
    rows: tuple[ForestRow, ...]


# --- formatting (also the template's filters) ----------------------------------------------

#: What the page shows for a figure nobody measured.
MISSING = "\u2013"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.0f}%"


def points(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:+.0f} pp"


def interval(ci: Sequence[float] | None, signed: bool = False) -> str:
    if not ci:
        return ""
    low, high = ci
    if signed:
        return f"[{low * 100:+.0f}, {high * 100:+.0f}]"
    return f"{low * 100:.0f}\u2013{high * 100:.0f}%"


def number(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.0f}"


def seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f} s"


def usd(value: float | None) -> str:
    return MISSING if value is None else f"${value:.4f}"


FILTERS = {
    "percent": percent,
    "points": points,
    "interval": interval,
    "number": number,
    "seconds": seconds,
    "usd": usd,
}


# --- building the view -----------------------------------------------------------------------


def _status(result: CallResult) -> str:
    if result.error is not None:
        return "error"
    if result.passed is None:
        return "ungraded"
    return "pass" if result.passed else "fail"


def _condition(name: str, results: Sequence[CallResult], info: RunInfo) -> Condition:
    ordered = sorted(results, key=lambda r: r.trial)
    several = len(ordered) > 1
    attempts = tuple(
        Attempt(
            label=(
                f"trial {r.trial + 1}"
                if info.trials > 1
                else (f"answer {index + 1}" if several else "")
            ),
            status=_status(r),
            output=r.output,
            error=r.error,
            checks=r.checks,
            segments=marked_segments(r.output or "", r.checks),
            # Added by the backends that report reasoning; absent on older records.
            reasoning=getattr(r, "reasoning", None) or None,
            cached=r.cached,
            tokens=r.usage.total if r.usage is not None else None,
            latency_s=r.latency_s,
            steps=_steps(r.trajectory),
        )
        for index, r in enumerate(ordered)
    )
    graded = [r for r in ordered if r.graded]
    passed = sum(bool(r.passed) for r in graded)
    if any(r.error is not None for r in ordered):
        status = "error"
    elif not graded:
        status = "ungraded"
    else:
        needed = max(1, math.ceil(info.pass_threshold * len(graded) - 1e-9))
        status = "pass" if passed >= needed else "fail"
    title = TITLES.get(name, f"{name} arm")
    measured = flakiness([bool(r.passed) for r in graded]) if graded else None
    pass_k = measured.pass_k if measured is not None and measured.flaky else None
    return Condition(name, title, attempts, passed, len(graded), status, pass_k)


def _outcome(with_skill: Condition, baseline: Condition | None) -> str:
    """What the skill did to one case on one model; a flip is "helped" or "hurt"."""
    statuses = {with_skill.status, baseline.status if baseline else "pass"}
    if "error" in statuses:
        return "error"
    if "ungraded" in statuses:
        return "ungraded"
    if baseline is None:
        return "no-baseline"
    return {
        ("pass", "fail"): "helped",
        ("fail", "pass"): "hurt",
        ("pass", "pass"): "both-pass",
    }.get((with_skill.status, baseline.status), "both-fail")


TITLES = {"with_skill": "with the skill", "baseline": "baseline (no skill)"}


def _steps(trajectory: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The agent loop's steps as lines, from a record's trajectory (untrusted JSON)."""
    steps = trajectory.get("steps") if isinstance(trajectory, Mapping) else None
    if not isinstance(steps, list):
        return ()
    lines = []
    for step in steps:
        if isinstance(step, Mapping):
            kind, detail = str(step.get("kind", "")), str(step.get("detail") or "")
            lines.append(f"turn {step.get('turn', '?')}: {kind}{': ' + detail if detail else ''}")
    return tuple(lines)


def _model_result(record: ItemRecord, info: RunInfo) -> ModelResult:
    by_condition: dict[str, list[CallResult]] = defaultdict(list)
    for result in record.results:
        by_condition[result.condition].append(result)
    with_skill = _condition("with_skill", by_condition["with_skill"], info)
    baseline = (
        _condition("baseline", by_condition["baseline"], info) if by_condition["baseline"] else None
    )
    others = tuple(
        _condition(name, results, info)
        for name, results in by_condition.items()
        if name not in TITLES and results
    )
    return ModelResult(
        model=record.model,
        resolved=record.resolved,
        nodeid=record.nodeid,
        outcome=_outcome(with_skill, baseline),
        with_skill=with_skill,
        baseline=baseline,
        xfail=record.xfail,
        others=others,
    )


#: At most this many marks per answer and verdict: a one-letter needle must not turn a
#: long answer into a page of tags.
MAX_MARKS = 200


def _marks(checks: Iterable[CheckResult]) -> dict[str, set[str]]:
    texts: dict[str, set[str]] = {"pass": set(), "fail": set()}
    for check in checks:
        texts["pass" if check.passed else "fail"].update(t for t in check.marks if t.strip())
        for verdict, found in _marks(check.children).items():
            texts[verdict] |= found
    return texts


def _spans(texts: set[str], answer: str) -> list[tuple[int, int]]:
    if not texts:
        return []
    # Longest first, so a needle inside a longer one does not cut the longer one short.
    alternatives = "|".join(re.escape(t) for t in sorted(texts, key=lambda t: (-len(t), t)))
    spans = []
    for match in re.finditer(alternatives, answer, re.IGNORECASE):
        spans.append(match.span())
        if len(spans) == MAX_MARKS:
            break
    return spans


def marked_segments(answer: str, checks: Sequence[CheckResult]) -> tuple[tuple[str, str], ...]:
    """``answer`` as ``(text, mark)`` runs, marking what the checks found (see
    :attr:`Attempt.segments`); where a pass and a fail mark overlap, the fail shows."""
    texts = _marks(checks)
    spans = {verdict: _spans(found, answer) for verdict, found in texts.items()}
    if not spans["pass"] and not spans["fail"]:
        return ((answer, ""),) if answer else ()
    cuts = sorted({0, len(answer), *(i for ss in spans.values() for span in ss for i in span)})

    def covered(verdict: str, start: int) -> bool:
        return any(a <= start < b for a, b in spans[verdict])

    runs: list[list[str]] = []
    for start, end in itertools.pairwise(cuts):
        mark = "fail" if covered("fail", start) else "pass" if covered("pass", start) else ""
        if runs and runs[-1][1] == mark:
            runs[-1][0] += answer[start:end]
        else:
            runs.append([answer[start:end], mark])
    return tuple((text, mark) for text, mark in runs)


_SPACE = re.compile(r"\s+")


def _anchors(keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """A link target per ``(skill, file, case)``: ``case-<id>``, or, when two cases share
    the id, the shortest of ``case-<skill>/<id>``, ``case-<file>::<id>`` that is unique."""
    forms = (
        lambda key: key[2],
        lambda key: f"{key[0]}/{key[2]}",
        lambda key: f"{key[1]}::{key[2]}",
    )
    counts = [Counter(form(key) for key in keys) for form in forms]
    anchors = {}
    for key in keys:
        name = next(
            (form(key) for form, count in zip(forms, counts, strict=True) if count[form(key)] == 1),
            f"{key[0]}/{key[1]}::{key[2]}",  # the keys are unique, so this is too
        )
        anchors[key] = "case-" + _SPACE.sub("-", name)
    return anchors


def cases(
    records: Iterable[ItemRecord], info: RunInfo, model_order: Sequence[str]
) -> list[SkillGroup]:
    """Records grouped by skill, then case; each case's models in the summary's order."""
    grouped: dict[tuple[str, str, str], list[ItemRecord]] = defaultdict(list)
    for record in sorted_records(records):
        grouped[(record.skill, record.file, record.case)].append(record)
    rank = {name: index for index, name in enumerate(model_order)}
    keys = sorted(grouped)
    anchors = _anchors(keys)
    by_skill: dict[str, list[CaseView]] = defaultdict(list)
    for key in keys:
        members = sorted(grouped[key], key=lambda r: (rank.get(r.model, len(rank)), r.model))
        first = members[0]
        by_skill[key[0]].append(
            CaseView(
                anchor=anchors[key],
                skill=first.skill,
                case=first.case,
                file=first.file,
                input=first.input,
                context_files=first.context_files,
                results=tuple(_model_result(record, info) for record in members),
            )
        )
    groups = []
    for skill, skill_cases in by_skill.items():
        tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for case in skill_cases:
            for result in case.results:
                tally[result.model][result.outcome] += 1
        ordered = sorted(tally, key=lambda name: (rank.get(name, len(rank)), name))
        groups.append(
            SkillGroup(
                skill,
                tuple(skill_cases),
                tuple((name, tuple(sorted(tally[name].items()))) for name in ordered),
            )
        )
    return groups


def forest_plot(models: Sequence[ModelSummary]) -> ForestPlot:
    """One row per model: the lift's point and 95% interval on a -100..+100 pp axis."""
    left, right, row_height, top = 250, 670, 34, 14
    width = right + 250
    height = top + row_height * max(1, len(models)) + 44

    def x(value: float) -> float:
        return round(left + (value + 1.0) / 2.0 * (right - left), 1)

    rows = []
    for index, m in enumerate(models):
        y = top + row_height * index + row_height / 2
        lift = m.lift
        if lift is None or lift.lift is None:
            reason = "no baseline" if m.baseline is None else "no paired answers"
            rows.append(ForestRow(m.model, y, None, None, None, "no data", reason))
            continue
        ci = lift.ci or (lift.lift, lift.lift)
        rows.append(
            ForestRow(
                m.model,
                y,
                x(ci[0]),
                x(ci[1]),
                x(lift.lift),
                lift.verdict,
                f"{points(lift.lift)} {interval(lift.ci, signed=True)}",
            )
        )
    ticks = tuple((x(v), f"{v * 100:+.0f}" if v else "0") for v in (-1.0, -0.5, 0.0, 0.5, 1.0))
    return ForestPlot(width, height, left, right, x(0.0), ticks, tuple(rows))


# --- rendering ----------------------------------------------------------------------------------


def _asset(name: str) -> str:
    folder = resources.files(__package__).joinpath(TEMPLATES)
    return folder.joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render(models: Sequence[ModelSummary], records: Sequence[ItemRecord], info: RunInfo) -> str:
    """The page, as text. Identical input gives identical bytes (no clock, no randomness
    beyond ``info``)."""
    # Imported here: Jinja2 is needed only when a report is asked for, and the plugin's
    # import stays light for every other run (tests/test_architecture.py checks it).
    import jinja2
    from markupsafe import Markup

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(FILTERS)
    style, script = _asset("report.css"), _asset("report.js")
    groups = cases(records, info, [m.model for m in models])
    page = environment.get_template(TEMPLATE).render(
        info=info,
        models=models,
        forest=forest_plot(models),
        groups=groups,
        skills=[group.name for group in groups],
        case_count=sum(len(group.cases) for group in groups),
        outcomes=OUTCOMES,
        outcome_labels=OUTCOME_LABELS,
        # Our own files, inlined verbatim; the policy admits exactly these two blocks.
        style=Markup(style),
        script=Markup(script),
        csp=(
            "default-src 'none'; img-src data:; "
            f"style-src {_csp_hash(style)}; script-src {_csp_hash(script)}; "
            "base-uri 'none'; form-action 'none'"
        ),
    )
    # A lone surrogate from an id, input or answer cannot be written as UTF-8.
    return without_surrogates(page)
