"""Trigger figures: whether models load skills when they are offered on demand.

Two sources, per model: the on-demand arm's answers to a skill's own cases (the share
that had the skill loaded), and trigger-eval items (queries that should or should not
activate a skill: precision, recall, and which other skill fired instead). A positive
control per skill ("Use the NAME skill to answer: ...") that does not activate the
skill makes the model's trigger figures invalid: the harness cannot measure a trigger
with that model, which is not the same as 0% recall.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_skills.report.records import CallResult, ItemRecord
from pytest_skills.report.stats import Proportion, proportion

#: The condition of a trigger-eval item's results.
TRIGGER_CONDITION = "trigger"
#: The condition of the positive control's results.
CONTROL_CONDITION = "control"
ON_DEMAND_CONDITION = "on-demand"
INVALID = "this model does not activate skills in this harness"


def trigger_meta(record: ItemRecord) -> Mapping[str, Any] | None:
    """A trigger-eval item's facts (should_trigger, threshold, split, control), else None."""
    meta = record.metadata.get("trigger")
    return meta if isinstance(meta, Mapping) else None


def activation_share(record: ItemRecord, condition: str = TRIGGER_CONDITION) -> float | None:
    """The share of the item's answered trials (of ``condition``) that activated its skill."""
    answered = [
        r
        for r in record.results
        if r.condition == condition and r.activated is not None and r.error is None
    ]
    if not answered:
        return None
    return sum(record.skill in (r.activated or ()) for r in answered) / len(answered)


@dataclass(frozen=True)
class SkillTrigger:
    skill: str
    queries: int
    true_positive: int
    false_positive: int
    false_negative: int
    #: Other skills activated on queries meant for this one, with how many trials.
    collisions: Mapping[str, int] = field(default_factory=dict)
    #: The positive control: True activated, False did not, None not run.
    control: bool | None = None

    @property
    def precision(self) -> float | None:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else None

    @property
    def recall(self) -> float | None:
        meant = self.true_positive + self.false_negative
        return self.true_positive / meant if meant else None


@dataclass(frozen=True)
class TriggerFigures:
    #: On-demand answers to the skills' own cases that had the skill loaded.
    rate: Proportion | None
    skills: tuple[SkillTrigger, ...] = ()
    #: False when a positive control did not activate its skill (None: no control run).
    valid: bool | None = None

    @property
    def failed_controls(self) -> list[str]:
        return [s.skill for s in self.skills if s.control is False]


def _skill_figures(skill: str, records: Sequence[ItemRecord]) -> SkillTrigger:
    tp = fp = fn = 0
    collisions: Counter[str] = Counter()
    control: bool | None = None
    queries = 0
    for record in records:
        meta = trigger_meta(record) or {}
        threshold = float(meta.get("threshold", 0.5))
        checked = activation_share(record, CONTROL_CONDITION)
        if checked is not None:
            fired = checked >= threshold
            control = fired if control is None else control and fired
        share = activation_share(record)
        if share is None:
            continue
        fired = share >= threshold
        queries += 1
        should = bool(meta.get("should_trigger"))
        tp += should and fired
        fp += (not should) and fired
        fn += should and not fired
        if should:
            for result in record.results:
                if result.condition == TRIGGER_CONDITION:
                    collisions.update(n for n in result.activated or () if n != skill)
    return SkillTrigger(skill, queries, tp, fp, fn, dict(sorted(collisions.items())), control)


def trigger_figures(records: Sequence[ItemRecord]) -> TriggerFigures | None:
    """One model's trigger figures; None when it ran neither the arm nor trigger evals."""
    own: list[CallResult] = [
        r
        for record in records
        if trigger_meta(record) is None
        for r in record.results
        if r.condition == ON_DEMAND_CONDITION and r.activated is not None
    ]
    loaded = 0
    for record in records:
        if trigger_meta(record) is None:
            loaded += sum(
                record.skill in (r.activated or ())
                for r in record.results
                if r.condition == ON_DEMAND_CONDITION and r.activated is not None
            )
    by_skill: dict[str, list[ItemRecord]] = {}
    for record in records:
        if trigger_meta(record) is not None:
            by_skill.setdefault(record.skill, []).append(record)
    if not own and not by_skill:
        return None
    skills = tuple(_skill_figures(name, found) for name, found in sorted(by_skill.items()))
    controls = [s.control for s in skills if s.control is not None]
    return TriggerFigures(
        rate=proportion(loaded, len(own)) if own else None,
        skills=skills,
        valid=all(controls) if controls else None,
    )


def _rate_json(p: Proportion) -> dict[str, Any]:
    return {"loaded": p.passed, "answers": p.total, "rate": p.rate, "ci": list(p.ci or ())}


def trigger_json(figures: TriggerFigures) -> dict[str, Any]:
    return {
        "rate": _rate_json(figures.rate) if figures.rate else None,
        "valid": figures.valid,
        "invalid_reason": INVALID if figures.valid is False else None,
        "skills": {
            s.skill: {
                # Figures a model cannot produce are withheld, never shown as 0%.
                "precision": s.precision if figures.valid is not False else None,
                "recall": s.recall if figures.valid is not False else None,
                "valid": s.control if s.control is not None else None,
                "queries": s.queries,
                "collisions": dict(s.collisions),
            }
            for s in figures.skills
        },
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def trigger_lines(model: str, figures: TriggerFigures) -> list[str]:
    """The terminal's lines: the skill loaded in the on-demand arm, then per skill."""
    lines = []
    if figures.rate is not None:
        rate = figures.rate
        lines.append(
            f"{model}: on-demand: the skill was loaded in {rate.passed}/{rate.total} answers "
            f"({_pct(rate.rate)})"
        )
    if figures.valid is False:
        failed = ", ".join(figures.failed_controls)
        lines.append(
            f"{model}: trigger figures invalid: {INVALID} (the explicit request to use "
            f"{failed} did not activate it)"
        )
        return lines
    for s in figures.skills:
        text = (
            f"{model}: trigger {s.skill}: precision {_pct(s.precision)}, recall "
            f"{_pct(s.recall)} over {s.queries} queries"
        )
        if s.collisions:
            text += "; fired instead: " + ", ".join(
                f"{name} ({count})" for name, count in s.collisions.items()
            )
        lines.append(text)
    return lines
