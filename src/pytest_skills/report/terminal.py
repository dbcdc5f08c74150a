"""The summary table and its notes, as lines that fit in 100 columns."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence

from pytest_skills.report.records import ItemRecord
from pytest_skills.report.stats import Proportion, proportion
from pytest_skills.report.summary import ModelSummary


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


def _tokens(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(
    models: Sequence[ModelSummary],
    *,
    verbose: bool = False,
    records: Sequence[ItemRecord] = (),
) -> list[str]:
    """The summary table; every line fits in 100 columns (rate intervals go in -v)."""
    width = min(max([len("model"), *(len(m.model) for m in models)]), 28)
    head = (
        f"{'model':<{width}} {'cases':>5}  {'with skill':>10}  {'baseline':>10} "
        f"{'lift':>7} {'95% CI':<11} {'p':>6} {'tokens w/b':>14}"
    )
    lines = ["", "skills: pass rate with and without the skill", head]
    for m in models:
        ws = rate_text(m.with_skill.rate)
        if m.baseline is not None and m.lift is not None:
            bs = rate_text(m.baseline.rate)
            lift = "-" if m.lift.lift is None else f"{m.lift.lift * 100:+.0f}pp"
            ci = interval_text(m.lift.ci, signed=True)
            p = "-" if m.lift.p_value is None else f"{m.lift.p_value:.3f}"
            tokens = f"{_tokens(m.with_skill.tokens)}/{_tokens(m.baseline.tokens)}"
        else:
            bs, lift, ci, p = "skipped", "-", "", "-"
            tokens = _tokens(m.with_skill.tokens)
        name = m.model if len(m.model) <= width else m.model[: width - 1] + "…"
        lines.append(
            f"{name:<{width}} {m.cases:>5}  {ws:>10}  {bs:>10} "
            f"{lift:>7} {ci:<11} {p:>6} {tokens:>14}"
        )
    notes = []
    for m in models:
        if m.lift is not None and m.lift.verdict == "inconclusive":
            notes.append(f"{m.model}: lift inconclusive (its 95% interval spans zero)")
        if m.errors:
            notes.append(f"{m.model}: {m.errors} call(s) failed and are left out of the rates")
        if m.token_change is not None:
            latency = (
                f" and latency by {m.latency_change:+.0%}" if m.latency_change is not None else ""
            )
            notes.append(
                f"{m.model}: the skill changes tokens per call by {m.token_change:+.0%}{latency}"
                + _cost_note(m)
            )
        read, written = m.with_skill.cache_read_tokens, m.with_skill.cache_write_tokens
        if read or written:
            notes.append(
                f"{m.model}: prompt cache per with-skill call: {read or 0:,.0f} tokens read, "
                f"{written or 0:,.0f} written"
            )
    lines.extend(_wrapped(notes))
    if verbose:
        lines.extend(_intervals(models))
        if records:
            lines.extend(_per_skill(records))
    return lines


def _wrapped(notes: Iterable[str]) -> list[str]:
    # Long model names must not push a note past 100 columns.
    return [
        line
        for note in notes
        for line in textwrap.wrap(note, 100, initial_indent="  ", subsequent_indent="    ")
    ]


def _intervals(models: Sequence[ModelSummary]) -> list[str]:
    header = ["", "skills: Wilson 95% intervals of the pass rates, mean latency per call"]
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


def _per_skill(records: Sequence[ItemRecord]) -> list[str]:
    groups: dict[tuple[str, str], list[ItemRecord]] = defaultdict(list)
    for record in records:
        groups[(record.skill, record.model)].append(record)
    lines = ["", "skills: by skill"]
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
