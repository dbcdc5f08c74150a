"""The JSON report (``--skill-report``) and the Markdown step summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_skills.arms import condition_arm
from pytest_skills.models import ALIASES_CHECKED
from pytest_skills.report.problems import Problem
from pytest_skills.report.records import ItemRecord, sorted_records
from pytest_skills.report.stats import Proportion
from pytest_skills.report.summary import ArmComparison, ModelSummary
from pytest_skills.report.trigger import trigger_json

if TYPE_CHECKING:
    from pytest_skills.settings import Settings

REPORT_VERSION = 2


def _proportion_json(p: Proportion) -> dict[str, Any]:
    return {
        "passed": p.passed,
        "total": p.total,
        "rate": p.rate,
        "ci": list(p.ci) if p.ci else None,
    }


def _comparison_json(c: ArmComparison) -> dict[str, Any]:
    return {
        "a": c.a,
        "b": c.b,
        "cases": c.paired.cases,
        "a_passed": c.paired.with_skill_passed,
        "b_passed": c.paired.baseline_passed,
        "answers": c.paired.answers,
        "lift": c.lift.lift,
        "ci": list(c.lift.ci) if c.lift.ci else None,
        "p": c.lift.p_value,
        "p_adjusted": c.lift.p_adjusted,
        "adjustment": c.lift.adjustment,
        "verdict": str(c.lift.verdict),
        "regressed": list(c.regressed),
    }


def to_json(
    models: Sequence[ModelSummary], records: Sequence[ItemRecord], settings: Settings
) -> dict[str, Any]:
    model_rows = []
    for m in models:
        model_rows.append(
            {
                "model": m.model,
                "resolved": m.resolved,
                "cases": m.cases,
                "cases_total": m.cases_total,
                "with_skill": _proportion_json(m.with_skill.rate),
                "baseline": _proportion_json(m.baseline.rate) if m.baseline else None,
                "lift": m.lift.lift if m.lift else None,
                "lift_ci": list(m.lift.ci) if m.lift and m.lift.ci else None,
                "p_value": m.lift.p_value if m.lift else None,
                "p_adjusted": m.lift.p_adjusted if m.lift else None,
                "verdict": m.lift.verdict if m.lift else None,
                "lift_method": m.lift.method if m.lift else None,
                "tokens": {
                    "with_skill": m.with_skill.tokens,
                    "baseline": m.baseline.tokens if m.baseline else None,
                    "relative_change": m.token_change,
                    "cache_read": m.with_skill.cache_read_tokens,
                    "cache_write": m.with_skill.cache_write_tokens,
                    "reasoning": {
                        "with_skill": m.with_skill.reasoning_tokens,
                        "baseline": m.baseline.reasoning_tokens if m.baseline else None,
                    },
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
                "ungraded": m.with_skill.ungraded + (m.baseline.ungraded if m.baseline else 0),
                "paired": dataclasses.asdict(m.paired) if m.paired else None,
                "arms": {arm: _proportion_json(c.rate) for arm, c in m.arms.items()},
                "comparisons": [_comparison_json(c) for c in m.comparisons],
                "flaky": [
                    {
                        "nodeid": f.nodeid,
                        "arm": f.arm,
                        "passed": f.flakiness.passed,
                        "trials": f.flakiness.trials,
                        "k": f.flakiness.k,
                        "pass_k": f.flakiness.pass_k,
                    }
                    for f in m.flaky
                ],
                "reported_models": list(m.reported_models),
                "adapted": list(m.adapted),
                "trigger": trigger_json(m.trigger) if m.trigger else None,
            }
        )
    results = []
    for record in sorted_records(records):
        for result in record.results:
            fields = result.to_json()
            del fields["cache_key"]
            row: dict[str, Any] = {
                "nodeid": record.nodeid,
                "skill": record.skill,
                "case": record.case,
                "model": record.model,
                "arm": condition_arm(result.condition),
                **fields,
            }
            if record.metadata:
                row["metadata"] = dict(record.metadata)
            if record.not_graded:
                row["not_graded"] = list(record.not_graded)
            if record.xfail is not None:
                row["xfail"] = record.xfail
            results.append(row)
    return {
        "version": REPORT_VERSION,
        "settings": {
            "trials": settings.trials,
            "cache_mode": settings.cache_mode,
            "baseline": settings.baseline,
            "arms": [arm.name for arm in settings.arms],
            "reasoning": settings.reasoning.text if settings.reasoning else None,
            # What every model name meant on this run: an alias's target, checked on
            # the date below.
            "models": [{"model": m.name, "resolved": m.resolved} for m in settings.models],
            "aliases_checked": ALIASES_CHECKED,
        },
        "models": model_rows,
        "results": results,
    }


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: no pipes, no newlines."""
    return " ".join(text.replace("|", "\\|").split())


def _md_rate(passed: int, total: int) -> str:
    return f"{passed}/{total} ({passed / total:.0%})" if total else "-"


def _comparison_table(models: Sequence[ModelSummary]) -> list[str]:
    """Every comparison beyond skill vs baseline, as a pull request's reviewer reads it:
    "this change: +12pp [-3,+27] against main, 2 cases regressed"."""
    rows = [(m, c) for m in models for c in m.comparisons if c.title != "skill vs baseline"]
    if not rows:
        return []
    lines = [
        "",
        "#### Comparisons",
        "",
        "| model | comparison | cases | lift | 95% CI | p | verdict | regressed |",
        "|---|---|---:|---:|:---:|---:|---|---:|",
    ]
    for m, c in rows:
        lift = c.lift
        points = "-" if lift.lift is None else f"{lift.lift * 100:+.0f} pp"
        ci = "-" if lift.ci is None else f"{lift.ci[0] * 100:+.0f} to {lift.ci[1] * 100:+.0f} pp"
        p = "-" if lift.p_decisive is None else f"{lift.p_decisive:.3f}"
        lines.append(
            f"| {_cell(m.model)} | {_cell(c.title)} | {c.paired.cases} | {points} | {ci} | {p} "
            f"| {lift.verdict} | {len(c.regressed)} |"
        )
    return lines


def markdown(
    models: Sequence[ModelSummary],
    records: Sequence[ItemRecord] = (),
    problems: Sequence[Problem] = (),
    max_failures: int = 20,
) -> str:
    """The GitHub step summary: lift per model with its interval, failing cases, problems."""
    lines = [
        "### Skill lift by model",
        "",
        "| model | cases | with skill | baseline | lift | 95% CI | p | verdict |",
        "|---|---:|---:|---:|---:|:---:|---:|---|",
    ]
    for m in models:
        ws = _md_rate(m.with_skill.rate.passed, m.with_skill.rate.total)
        if m.lift is None or m.baseline is None:
            lines.append(f"| {_cell(m.model)} | {m.cases} | {ws} | skipped | - | - | - | - |")
            continue
        lift = m.lift
        bs = _md_rate(m.baseline.rate.passed, m.baseline.rate.total)
        points = "-" if lift.lift is None else f"{lift.lift * 100:+.0f} pp"
        ci = "-" if lift.ci is None else f"{lift.ci[0] * 100:+.0f} to {lift.ci[1] * 100:+.0f} pp"
        p = "-" if lift.p_decisive is None else f"{lift.p_decisive:.3f}"
        lines.append(
            f"| {_cell(m.model)} | {m.cases} | {ws} | {bs} | {points} | {ci} | {p} | "
            f"{lift.verdict} |"
        )
    lines += _comparison_table(models)
    failing = [
        (record, result)
        for record in sorted_records(records)
        for result in record.results
        if result.condition == "with_skill" and result.graded and not result.passed
    ]
    if failing:
        lines += ["", f"#### Failing with the skill ({len(failing)})", ""]
        lines += ["| model | case | answer |", "|---|---|---|"]
        for record, result in failing[:max_failures]:
            answer = _cell(result.output or "")
            answer = answer if len(answer) <= 120 else answer[:119] + "…"
            lines.append(f"| {_cell(record.model)} | `{_cell(record.nodeid)}` | {answer} |")
        if len(failing) > max_failures:
            lines.append(f"| | {len(failing) - max_failures} more | |")
    if problems:
        lines += ["", "#### Problems", ""]
        for problem in problems:
            head, *rest = problem.lines()
            lines.append(f"- {_cell(head)}" + "".join(f" `{line.strip()}`" for line in rest))
    return "\n".join(lines) + "\n"
