"""The JSON report (``--skill-report``) and the Markdown step summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_skills.report.records import ItemRecord, sorted_records
from pytest_skills.report.stats import Proportion
from pytest_skills.report.summary import ModelSummary
from pytest_skills.report.terminal import interval_text, rate_text

if TYPE_CHECKING:
    from pytest_skills.settings import Settings

REPORT_VERSION = 1


def _proportion_json(p: Proportion) -> dict[str, Any]:
    return {
        "passed": p.passed,
        "total": p.total,
        "rate": p.rate,
        "ci": list(p.ci) if p.ci else None,
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
    for record in sorted_records(records):
        for result in record.results:
            fields = result.to_json()
            del fields["cache_key"]
            results.append(
                {
                    "nodeid": record.nodeid,
                    "skill": record.skill,
                    "case": record.case,
                    "model": record.model,
                    **fields,
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
        ws = rate_text(m.with_skill.rate)
        bs = rate_text(m.baseline.rate) if m.baseline else "skipped"
        lift = "-" if not m.lift or m.lift.lift is None else f"{m.lift.lift * 100:+.0f} pp"
        ci = interval_text(m.lift.ci, signed=True) if m.lift else ""
        p = "-" if not m.lift or m.lift.p_value is None else f"{m.lift.p_value:.3f}"
        lines.append(f"| {m.model} | {m.cases} | {ws} | {bs} | {lift} | {ci} | {p} |")
    return "\n".join(lines) + "\n"
