"""The summary table and its notes, as lines that fit in 100 columns."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence

from pytest_skills.execution.runner import Progress
from pytest_skills.report.names import short_names
from pytest_skills.report.problems import Problem
from pytest_skills.report.records import ItemRecord
from pytest_skills.report.stats import Proportion, proportion
from pytest_skills.report.summary import ArmComparison, ModelSummary
from pytest_skills.report.trigger import trigger_lines, trigger_meta


def progress_text(progress: Progress, arm_order: Sequence[str] = ()) -> str:
    """What the run's calls came to: ``skills: 48 calls: 24 live, 24 from the cache ...``."""
    live = progress.done - progress.cached - progress.failed
    done = f"{progress.done}/{progress.total}" if progress.done < progress.total else progress.total
    counts = [live, progress.cached, progress.failed]
    parts = [f"{count} {word}" for count, word in zip(counts, _PROGRESS_WORDS, strict=True)]
    if arm_order and len(progress.by_arm) > 1:
        # Which arms called a model and which were replayed: "24 live (skill)".
        for index, part in enumerate(parts):
            rank = {arm: i for i, arm in enumerate(arm_order)}
            ordered = sorted(progress.by_arm.items(), key=lambda item: rank.get(item[0], len(rank)))
            arms = [arm for arm, c in ordered if c[index]]
            if counts[index] and arms:
                parts[index] = f"{part} ({', '.join(arms)})"
    return f"skills: {done} calls: {', '.join(parts)} ({progress.elapsed:.1f}s)"


_PROGRESS_WORDS = ("live", "from the cache", "failed")


def rate_text(p: Proportion) -> str:
    if p.rate is None:
        return "-"
    return f"{p.passed}/{p.total} {p.rate:4.0%}"


def interval_text(ci: tuple[float, float] | None, signed: bool = False) -> str:
    if ci is None:
        return ""
    if signed:
        return f"[{ci[0] * 100:+.0f},{ci[1] * 100:+.0f}]"
    return f"[{ci[0] * 100:.0f}-{ci[1] * 100:.0f}]"


def _count(value: float, noun: str) -> str:
    return f"{value:,.0f} {noun}{'' if round(value) == 1 else 's'}"


#: Model names longer than this are shortened in the table (and named in full below it).
NAME_WIDTH = 28

LEGEND = [
    "cases: cases graded in both conditions (the lift pairs them); with skill, baseline:",
    "answers that passed over those cases; lift: with skill minus baseline, in percentage",
    "points, over cases (a case's trials count as one pass share); 95% CI: Newcombe's paired",
    "interval over cases; p: exact sign-flip test over cases (McNemar with one trial),",
    "adjusted over all comparisons of the run (--skill-multiplicity, Holm by default);",
    "verdict: improves or hurts when that p <= 0.05, else inconclusive (docs/statistics.md).",
]


def table(
    models: Sequence[ModelSummary],
    *,
    verbose: bool = False,
    records: Sequence[ItemRecord] = (),
) -> list[str]:
    """The summary table and its notes; every line fits in 100 columns."""
    width = min(max([len("model"), *(len(m.model) for m in models)]), NAME_WIDTH)
    shown = short_names([m.model for m in models], width)
    width = max([len("model"), *(len(name) for name in shown.values())])
    head = (
        f"{'model':<{width}} {'cases':>5}  {'with skill':>10}  {'baseline':>10} "
        f"{'lift':>6}  {'95% CI':<10} {'p':>5}  verdict"
    )
    lines = ["pass rate with and without the skill", head]
    notes: list[str] = []
    for m in models:
        lines.append(f"{shown[m.model]:<{width}} {_row(m)}")
        notes.extend(_comparison_notes(m))
        notes.extend(_notes(m, verbose))
    cut = [f"{shown[m.model]} is {m.model}" for m in models if shown[m.model] != m.model]
    if cut:
        notes.insert(0, "models: " + "; ".join(cut))
    lines.extend(_wrapped(notes))
    if verbose:
        lines += _flaky_lines(models)
        lines += ["", "columns:", *(f"  {line}" for line in LEGEND)]
        lines.extend(_intervals(models))
        if records:
            lines.extend(_per_skill(records))
    return lines


def _row(m: ModelSummary) -> str:
    if m.cases_total == 0 and m.trigger is not None:
        return f"{m.cases:>5}  trigger evals only (their figures below)"
    if m.with_skill.rate.total == 0 and m.cases == 0:
        return f"{m.cases:>5}  no graded answers (see the problems below)"
    ws = rate_text(m.with_skill.rate)
    if m.baseline is None or m.lift is None:
        return f"{m.cases:>5}  {ws:>10}  {'skipped':>10} {'-':>6}  {'':<10} {'-':>5}  -"
    bs = rate_text(m.baseline.rate)
    lift = "-" if m.lift.lift is None else f"{m.lift.lift * 100:+.0f}pp"
    ci = interval_text(m.lift.ci, signed=True)
    p = "-" if m.lift.p_decisive is None else f"{m.lift.p_decisive:.3f}"
    verdict = m.lift.verdict if m.lift.lift is not None else "-"
    return f"{m.cases:>5}  {ws:>10}  {bs:>10} {lift:>6}  {ci:<10} {p:>5}  {verdict}"


def _flaky_lines(models: Sequence[ModelSummary]) -> list[str]:
    """Cases whose trials disagree: averaged into the rates, shown here by name."""
    rows = [
        f"  {m.model}: {f.nodeid} ({f.arm}): {f.flakiness.passed}/{f.flakiness.trials} "
        f"passed, pass^{f.flakiness.k} {f.flakiness.pass_k:.2f}"
        for m in models
        for f in m.flaky
    ]
    return ["", "flaky (trials disagree):", *rows] if rows else []


def comparison_text(c: ArmComparison) -> str:
    """``skill vs ref:main: 5/6 against 6/6, -17pp [-64,+30] p 1.000 inconclusive``."""
    lift = c.lift
    if lift.lift is None:
        return f"{c.title}: no case graded in both"
    rates = (
        f"{c.paired.with_skill_passed}/{c.paired.answers} against "
        f"{c.paired.baseline_passed}/{c.paired.answers}"
    )
    p = "" if lift.p_decisive is None else f" p {lift.p_decisive:.3f}"
    text = (
        f"{c.title}: {rates}, {lift.lift * 100:+.0f}pp "
        f"{interval_text(lift.ci, signed=True)}{p} {lift.verdict}"
    )
    if c.regressed:
        text += f"; {len(c.regressed)} case(s) regressed: {', '.join(c.regressed)}"
    return text


def _comparison_notes(m: ModelSummary) -> list[str]:
    """One line per comparison beyond the table's skill vs baseline."""
    lines = [
        f"{m.model}: {comparison_text(c)}" for c in m.comparisons if c.title != "skill vs baseline"
    ]
    return lines + (trigger_lines(m.model, m.trigger) if m.trigger else [])


def _notes(m: ModelSummary, verbose: bool) -> list[str]:
    notes = []
    if m.paired is not None and 0 < m.cases < m.cases_total and m.with_skill.rate_all:
        left_out = m.cases_total - m.cases
        notes.append(
            f"{m.model}: {left_out} of {m.cases_total} cases left out of the figures (no "
            f"graded answer in one condition); with the skill over all graded answers: "
            f"{rate_text(m.with_skill.rate_all)}"
        )
    with_tokens = m.with_skill.tokens
    if with_tokens is not None:
        text = f"{m.model}: tokens per call: {with_tokens:,.0f} with the skill"
        if m.baseline is not None and m.baseline.tokens is not None:
            text += f", {m.baseline.tokens:,.0f} without"
            if m.token_change is not None:
                text += f" ({m.token_change:+.0%})"
        notes.append(text + _cost_note(m))
    read, written = m.with_skill.cache_read_tokens or 0, m.with_skill.cache_write_tokens or 0
    if read or written:
        parts = [
            f"{_count(read, 'token')} read" if read else "",
            f"{_count(written, 'token')} written" if written else "",
        ]
        notes.append(
            f"{m.model}: prompt cache per with-skill call: " + ", ".join(p for p in parts if p)
        )
    return notes


def _wrapped(notes: Iterable[str]) -> list[str]:
    # Long model names must not push a note past 100 columns.
    return [
        line
        for note in notes
        for line in textwrap.wrap(note, 100, initial_indent="  ", subsequent_indent="    ")
    ]


def _intervals(models: Sequence[ModelSummary]) -> list[str]:
    header = [
        "",
        "Wilson 95% intervals of the pass rates; mean latency per call (one sample per call:",
        "it varies from run to run and is not a property of the skill)",
    ]
    lines = []
    for m in models:
        text = f"{m.model}: with skill {interval_text(m.with_skill.rate.ci)}"
        if m.baseline is not None:
            text += f", baseline {interval_text(m.baseline.rate.ci)}"
        if m.with_skill.latency_s is not None:
            text += f"; latency {m.with_skill.latency_s:.2f}s with"
            if m.baseline is not None and m.baseline.latency_s is not None:
                text += f", {m.baseline.latency_s:.2f}s without"
        lines.append(text)
    return header + _wrapped(lines)


def _cost_note(m: ModelSummary) -> str:
    if m.baseline is None or m.with_skill.cost_usd is None or m.baseline.cost_usd is None:
        return ""
    return f"; cost ${m.with_skill.cost_usd:.4f} with, ${m.baseline.cost_usd:.4f} without"


def problem_lines(problems: Sequence[Problem]) -> list[str]:
    if not problems:
        return []
    lines = ["", "problems (each said once; the items they touch fail or skip with a short reason)"]
    for problem in problems:
        head, *rest = problem.lines()
        lines.extend(_wrapped([head]))
        lines.extend(rest)  # commands and paths: never wrapped, so they can be copied
    return lines


def _per_skill(records: Sequence[ItemRecord]) -> list[str]:
    groups: dict[tuple[str, str], list[ItemRecord]] = defaultdict(list)
    for record in records:
        if trigger_meta(record) is None:  # trigger evals have figures of their own
            groups[(record.skill, record.model)].append(record)
    if not groups:
        return []
    lines = ["", "by skill"]
    for (skill, model), group in sorted(groups.items()):
        results = [r for record in group for r in record.results if r.graded]
        ws = proportion(
            sum(bool(r.passed) for r in results if r.condition == "with_skill"),
            sum(r.condition == "with_skill" for r in results),
        )
        bs = proportion(
            sum(bool(r.passed) for r in results if r.condition == "baseline"),
            sum(r.condition == "baseline" for r in results),
        )
        lines.append(
            f"  {skill[:30]:<30} {model[:20]:<20} with {rate_text(ws):<10} baseline {rate_text(bs)}"
        )
    return lines
