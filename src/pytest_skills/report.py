"""Aggregate per-item records into per-model figures; render table, JSON and markdown.

Records are the dicts that items put on ``report.user_properties``; they reach the
controller unchanged under xdist, so ``-n 0`` and ``-n 2`` aggregate the same data.
Records are sorted before aggregation so the figures never depend on arrival order.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from pytest_skills.pricing import cost_usd
from pytest_skills.stats import (
    Lift,
    Proportion,
    bootstrap_lift,
    paired_lift,
    proportion,
    relative_change,
)

REPORT_VERSION = 1


@dataclass(frozen=True)
class ConditionSummary:
    rate: Proportion
    tokens: float | None
    latency_s: float | None
    cost_usd: float | None
    errors: int
    #: Mean provider prompt-cache tokens per call (Anthropic cache_control, OpenAI
    #: cached input, llama.cpp prefix reuse).
    cache_read_tokens: float | None = None
    cache_write_tokens: float | None = None


@dataclass(frozen=True)
class ModelSummary:
    model: str
    resolved: str
    cases: int
    with_skill: ConditionSummary
    baseline: ConditionSummary | None
    lift: Lift | None

    @property
    def errors(self) -> int:
        """Failed calls, both conditions."""
        return self.with_skill.errors + (self.baseline.errors if self.baseline else 0)

    @property
    def token_change(self) -> float | None:
        if self.baseline is None:
            return None
        return relative_change(self.with_skill.tokens, self.baseline.tokens)

    @property
    def latency_change(self) -> float | None:
        if self.baseline is None:
            return None
        return relative_change(self.with_skill.latency_s, self.baseline.latency_s)


def _condition(results: Sequence[Mapping[str, Any]], resolved: str) -> ConditionSummary:
    ok = [r for r in results if r.get("error") is None]
    usages = [r.get("usage") or {} for r in ok]
    tokens = [sum(usage.values()) for usage in usages]
    latencies = [r["latency_s"] for r in ok if r.get("latency_s") is not None]
    costs = [cost_usd(resolved, r.get("usage") or {}) for r in ok]
    known_costs = [c for c in costs if c is not None]
    return ConditionSummary(
        # passed null: an answer nobody graded (the skill_model fixture's unjudged
        # baseline); its tokens and latency count, its pass rate cannot.
        rate=proportion(
            sum(bool(r["passed"]) for r in ok if r.get("passed") is not None),
            sum(r.get("passed") is not None for r in ok),
        ),
        tokens=fmean(tokens) if tokens else None,
        latency_s=fmean(latencies) if latencies else None,
        cost_usd=sum(known_costs) if known_costs and len(known_costs) == len(costs) else None,
        errors=len(results) - len(ok),
        cache_read_tokens=fmean(u.get("cache_read_tokens", 0) for u in usages) if ok else None,
        cache_write_tokens=fmean(u.get("cache_write_tokens", 0) for u in usages) if ok else None,
    )


def _lift(records: Sequence[Mapping[str, Any]], trials: int) -> Lift:
    """Pair conditions by case; a case counts only when both conditions have answers."""
    per_case: list[tuple[list[bool], list[bool]]] = []
    for record in records:
        by_condition: dict[str, list[bool]] = defaultdict(list)
        for result in record["results"]:
            if result.get("error") is None and result.get("passed") is not None:
                by_condition[result["condition"]].append(bool(result["passed"]))
        if by_condition["with_skill"] and by_condition["baseline"]:
            per_case.append((by_condition["with_skill"], by_condition["baseline"]))
    if trials <= 1 and all(len(w) == 1 and len(b) == 1 for w, b in per_case):
        return paired_lift([(w[0], b[0]) for w, b in per_case])
    return bootstrap_lift([(fmean(w), fmean(b)) for w, b in per_case])


def _sorted(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records in a fixed order, so figures and reports never depend on arrival order."""
    return sorted(records, key=lambda r: (r["file"], r["case"], r["model"]))


def summarise(records: Iterable[Mapping[str, Any]], settings: Any) -> list[ModelSummary]:
    by_model: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    order: list[str] = []
    for record in _sorted(records):
        if record["model"] not in by_model:
            order.append(record["model"])
        by_model[record["model"]].append(record)
    configured = [m.name for m in getattr(settings, "models", ())]
    order.sort(key=lambda name: configured.index(name) if name in configured else len(configured))
    summaries = []
    for name in order:
        model_records = by_model[name]
        resolved = model_records[0]["resolved"]
        results = [r for record in model_records for r in record["results"]]
        with_skill = [r for r in results if r["condition"] == "with_skill"]
        baseline = [r for r in results if r["condition"] == "baseline"]
        summaries.append(
            ModelSummary(
                model=name,
                resolved=resolved,
                cases=len(model_records),
                with_skill=_condition(with_skill, resolved),
                baseline=_condition(baseline, resolved) if baseline else None,
                lift=_lift(model_records, getattr(settings, "trials", 1)) if baseline else None,
            )
        )
    return summaries


# --- terminal -------------------------------------------------------------------------


def _rate(p: Proportion) -> str:
    if p.rate is None:
        return "-"
    return f"{p.passed}/{p.total} {p.rate:4.0%}"


def _ci(ci: tuple[float, float] | None, signed: bool = False) -> str:
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
    records: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """The summary table; every line fits in 100 columns (rate intervals go in -v)."""
    width = min(max([len("model"), *(len(m.model) for m in models)]), 28)
    head = (
        f"{'model':<{width}} {'cases':>5}  {'with skill':>10}  {'baseline':>10} "
        f"{'lift':>7} {'95% CI':<11} {'p':>6} {'tokens w/b':>14}"
    )
    lines = ["", "skills: pass rate with and without the skill", head]
    for m in models:
        ws = _rate(m.with_skill.rate)
        if m.baseline is not None and m.lift is not None:
            bs = _rate(m.baseline.rate)
            lift = "-" if m.lift.lift is None else f"{m.lift.lift * 100:+.0f}pp"
            ci = _ci(m.lift.ci, signed=True)
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
        text = f"{m.model}: with skill {_ci(m.with_skill.rate.ci)}"
        if m.baseline is not None:
            text += f", baseline {_ci(m.baseline.rate.ci)}"
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


def _per_skill(records: Sequence[Mapping[str, Any]]) -> list[str]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        groups[(record["skill"], record["model"])].append(record)
    lines = ["", "skills: by skill"]
    for (skill, model), group in sorted(groups.items()):
        results = [
            r
            for record in group
            for r in record["results"]
            if r.get("error") is None and r.get("passed") is not None
        ]
        ws = proportion(
            sum(r["passed"] for r in results if r["condition"] == "with_skill"),
            sum(r["condition"] == "with_skill" for r in results),
        )
        bs = proportion(
            sum(r["passed"] for r in results if r["condition"] == "baseline"),
            sum(r["condition"] == "baseline" for r in results),
        )
        lines.append(
            f"  {skill[:30]:<30} {model[:20]:<20} with {_rate(ws):<10} baseline {_rate(bs)}"
        )
    return lines


# --- gates ----------------------------------------------------------------------------


def gate_failures(models: Sequence[ModelSummary], settings: Any) -> list[str]:
    threshold = getattr(settings, "min_lift", None)
    if threshold is None:
        return []
    failures = []
    for m in models:
        if m.lift is None or m.lift.lift is None:
            failures.append(
                f"{m.model}: no lift measured (baseline skipped or no answers); "
                f"--skill-min-lift {threshold:g} needs one"
            )
            continue
        if settings.min_lift_significant:
            low = (m.lift.ci or (m.lift.lift, m.lift.lift))[0] * 100
            if low < threshold:
                failures.append(
                    f"{m.model}: the lift's 95% interval starts at {low:+.1f} points, "
                    f"below the required {threshold:g}"
                )
        elif m.lift.lift * 100 < threshold:
            failures.append(
                f"{m.model}: lift {m.lift.lift * 100:+.1f} points is below the "
                f"required {threshold:g}"
            )
    return failures


# --- JSON and markdown ----------------------------------------------------------------


def _proportion_json(p: Proportion) -> dict[str, Any]:
    return {
        "passed": p.passed,
        "total": p.total,
        "rate": p.rate,
        "ci": list(p.ci) if p.ci else None,
    }


def to_json(
    models: Sequence[ModelSummary], records: Sequence[Mapping[str, Any]], settings: Any
) -> dict[str, Any]:
    model_rows = []
    for m in models:
        model_rows.append(
            {
                "model": m.model,
                "resolved": m.resolved,
                "cases": m.cases,
                "with_skill": _proportion_json(m.with_skill.rate),
                "baseline": _proportion_json(m.baseline.rate) if m.baseline else None,
                "lift": m.lift.lift if m.lift else None,
                "lift_ci": list(m.lift.ci) if m.lift and m.lift.ci else None,
                "p_value": m.lift.p_value if m.lift else None,
                "verdict": m.lift.verdict if m.lift else None,
                "lift_method": m.lift.method if m.lift else None,
                "tokens": {
                    "with_skill": m.with_skill.tokens,
                    "baseline": m.baseline.tokens if m.baseline else None,
                    "relative_change": m.token_change,
                    "cache_read": m.with_skill.cache_read_tokens,
                    "cache_write": m.with_skill.cache_write_tokens,
                },
                "latency_s": {
                    "with_skill": m.with_skill.latency_s,
                    "baseline": m.baseline.latency_s if m.baseline else None,
                    "relative_change": m.latency_change,
                },
                "cost_usd": {
                    "with_skill": m.with_skill.cost_usd,
                    "baseline": m.baseline.cost_usd if m.baseline else None,
                },
                "errors": m.errors,
            }
        )
    results = []
    for record in _sorted(records):
        for result in record["results"]:
            results.append(
                {
                    "nodeid": record.get("nodeid", ""),
                    "skill": record["skill"],
                    "case": record["case"],
                    "model": record["model"],
                    **{k: v for k, v in result.items() if k != "cache_key"},
                }
            )
    return {
        "version": REPORT_VERSION,
        "settings": {
            "trials": settings.trials,
            "cache_mode": settings.cache_mode,
            "baseline": settings.baseline,
        },
        "models": model_rows,
        "results": results,
    }


def markdown(models: Sequence[ModelSummary]) -> str:
    lines = [
        "### Skill lift by model",
        "",
        "| model | cases | with skill | baseline | lift | 95% CI | p |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for m in models:
        ws = _rate(m.with_skill.rate)
        bs = _rate(m.baseline.rate) if m.baseline else "skipped"
        lift = "-" if not m.lift or m.lift.lift is None else f"{m.lift.lift * 100:+.0f} pp"
        ci = _ci(m.lift.ci, signed=True) if m.lift else ""
        p = "-" if not m.lift or m.lift.p_value is None else f"{m.lift.p_value:.3f}"
        lines.append(f"| {m.model} | {m.cases} | {ws} | {bs} | {lift} | {ci} | {p} |")
    return "\n".join(lines) + "\n"
