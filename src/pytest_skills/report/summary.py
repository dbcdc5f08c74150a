"""Aggregate item records into per-model figures, and the gates that judge them.

Records are sorted before aggregation so the figures never depend on arrival order
(``-n 0`` and ``-n 2`` aggregate the same data).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import fmean
from typing import TYPE_CHECKING

from pytest_skills.arms import condition_arm
from pytest_skills.models import ErrorKind
from pytest_skills.report.pricing import cost_usd
from pytest_skills.report.problems import Problem, find_problems
from pytest_skills.report.records import CallResult, ItemRecord, sorted_records
from pytest_skills.report.stats import (
    CaseOutcome,
    Flakiness,
    Lift,
    Proportion,
    adjust,
    compare,
    flakiness,
    proportion,
    relative_change,
)
from pytest_skills.report.trigger import TriggerFigures, trigger_figures, trigger_meta

if TYPE_CHECKING:
    from pytest_skills.settings import Settings


@dataclass(frozen=True)
class ConditionSummary:
    #: Graded answers that passed, over the cases graded in both conditions when there is
    #: a baseline (the figures the lift compares), else over every graded answer.
    rate: Proportion
    tokens: float | None
    latency_s: float | None
    cost_usd: float | None
    #: Calls that produced no answer (distinct calls: one call may serve several items).
    errors: int
    #: Answers a check could not grade (e.g. the judge's call failed).
    ungraded: int = 0
    #: Mean provider prompt-cache tokens per call (Anthropic cache_control, OpenAI
    #: cached input, llama.cpp prefix reuse).
    cache_read_tokens: float | None = None
    cache_write_tokens: float | None = None
    #: Mean reasoning tokens per call (a part of ``tokens``, and of its cost).
    reasoning_tokens: float | None = None
    #: Over every graded answer, paired or not.
    rate_all: Proportion | None = None


@dataclass(frozen=True)
class PairedRates:
    """Pass counts over the cases graded in both conditions: what the lift compares."""

    cases: int
    #: Graded answers per condition over those cases (cases x trials).
    answers: int
    with_skill_passed: int
    baseline_passed: int


@dataclass(frozen=True)
class ModelSummary:
    model: str
    resolved: str
    #: The cases the figures count: graded in both conditions when there is a baseline.
    cases: int
    with_skill: ConditionSummary
    baseline: ConditionSummary | None
    lift: Lift | None
    paired: PairedRates | None = None
    #: The model ids the provider reported for the answers (what an alias meant then).
    reported_models: tuple[str, ...] = ()
    #: Parameters a server refused, and what was sent instead (said once per model).
    adapted: tuple[str, ...] = ()
    #: Every case run on this model, graded or not.
    cases_total: int = 0
    #: Each arm's figures over all its graded answers, by arm name.
    arms: Mapping[str, ConditionSummary] = field(default_factory=dict)
    #: The skill arm against each other arm (``skill vs baseline`` first, when run).
    comparisons: tuple[ArmComparison, ...] = ()
    #: Cases whose trials disagree in an arm, with pass^k.
    flaky: tuple[FlakyCase, ...] = ()
    #: Whether the model loads skills offered on demand (the on-demand arm, trigger evals).
    trigger: TriggerFigures | None = None

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


def _condition(results: Sequence[CallResult], resolved: str) -> ConditionSummary:
    ok = [r for r in results if r.ok]
    usages = [r.usage for r in ok if r.usage is not None]
    tokens = [usage.total for usage in usages]
    latencies = [r.latency_s for r in ok if r.latency_s is not None]
    costs = [
        cost_usd(resolved, r.usage.as_dict() if r.usage else {}, batch=r.batch is not None)
        for r in ok
    ]
    known_costs = [c for c in costs if c is not None]
    graded = [r for r in ok if r.passed is not None]
    return ConditionSummary(
        # passed None: an answer nobody graded (the skill_model fixture's unjudged
        # baseline); its tokens and latency count, its pass rate cannot.
        rate=proportion(sum(bool(r.passed) for r in graded), len(graded)),
        tokens=fmean(tokens) if tokens else None,
        latency_s=fmean(latencies) if latencies else None,
        cost_usd=sum(known_costs) if known_costs and len(known_costs) == len(costs) else None,
        errors=len(
            {r.cache_key for r in results if not r.ok and r.error_kind is not ErrorKind.NOT_GRADED}
        ),
        ungraded=len({r.cache_key for r in results if r.error_kind is ErrorKind.NOT_GRADED}),
        cache_read_tokens=fmean(u.cache_read_tokens for u in usages) if usages else None,
        cache_write_tokens=fmean(u.cache_write_tokens for u in usages) if usages else None,
        reasoning_tokens=fmean(u.reasoning_tokens for u in usages) if usages else None,
    )


def _paired(
    records: Sequence[ItemRecord], a: str = "with_skill", b: str = "baseline"
) -> list[tuple[list[bool], list[bool]]]:
    """Per case, the verdicts of conditions ``a`` and ``b``; only cases graded in both."""
    return [(first, second) for _, first, second in _paired_cases(records, a, b)]


def _paired_cases(
    records: Sequence[ItemRecord], a: str, b: str
) -> list[tuple[ItemRecord, list[bool], list[bool]]]:
    per_case = []
    for record in records:
        by_condition: dict[str, list[bool]] = defaultdict(list)
        for result in record.results:
            if result.graded:
                by_condition[result.condition].append(bool(result.passed))
        if by_condition[a] and by_condition[b]:
            per_case.append((record, by_condition[a], by_condition[b]))
    return per_case


@dataclass(frozen=True)
class ArmComparison:
    """Arm ``a`` against arm ``b`` on the same cases: ``a``'s rate minus ``b``'s."""

    a: str
    b: str
    paired: PairedRates
    lift: Lift
    #: Cases (node ids) that pass in ``b`` and fail in ``a`` (by their share of trials).
    regressed: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.a} vs {self.b}"


def _comparisons(
    records: Sequence[ItemRecord], conditions: Sequence[str], trials: int
) -> tuple[ArmComparison, ...]:
    """The skill arm against every other arm, and the placebo against the baseline."""
    present = [
        c for c in conditions if any(r.condition == c for rec in records for r in rec.results)
    ]
    main = "with_skill" if "with_skill" in present else (present[0] if present else None)
    pairs = [(main, other) for other in present if main is not None and other != main]
    if "placebo" in present and "baseline" in present and main != "placebo":
        pairs.append(("placebo", "baseline"))
    # The on-demand lift; with the skill arm's (the forced lift) and skill vs on-demand
    # (the lift lost to not triggering) it says what loading on demand costs.
    if "on-demand" in present and "baseline" in present and main != "on-demand":
        pairs.append(("on-demand", "baseline"))
    found = []
    for a, b in pairs:
        assert a is not None
        cases = _paired_cases(records, a, b)
        per_case = [(first, second) for _, first, second in cases]
        regressed = tuple(
            record.nodeid for record, first, second in cases if fmean(second) > 0.5 >= fmean(first)
        )
        found.append(
            ArmComparison(
                condition_arm(a),
                condition_arm(b),
                _paired_rates(per_case),
                _lift(per_case, trials),
                regressed,
            )
        )
    return tuple(found)


def _lift(per_case: Sequence[tuple[list[bool], list[bool]]], trials: int) -> Lift:
    """The paired comparison, each case one unit whatever its trials (docs/statistics.md)."""
    del trials  # the case outcomes carry their own trial counts
    return compare([CaseOutcome.from_trials(w, b) for w, b in per_case])


@dataclass(frozen=True)
class FlakyCase:
    """A case whose trials in one arm disagree."""

    nodeid: str
    arm: str
    flakiness: Flakiness


def _flaky(records: Sequence[ItemRecord]) -> tuple[FlakyCase, ...]:
    found = []
    for record in records:
        by_condition: dict[str, list[bool]] = defaultdict(list)
        for result in record.results:
            if result.graded:
                by_condition[result.condition].append(bool(result.passed))
        for condition, outcomes in by_condition.items():
            measured = flakiness(outcomes)
            if measured.flaky:
                found.append(FlakyCase(record.nodeid, condition_arm(condition), measured))
    return tuple(found)


def adjusted(models: Sequence[ModelSummary], method: str) -> list[ModelSummary]:
    """Every comparison of the run adjusted as one family (Holm by default): the verdicts
    follow the adjusted p-values; ``lift`` is the adjusted skill vs baseline comparison."""
    family = [(i, j) for i, m in enumerate(models) for j in range(len(m.comparisons))]
    lifts = adjust([models[i].comparisons[j].lift for i, j in family], method)
    result = []
    for i, m in enumerate(models):
        comparisons = tuple(
            replace(c, lift=lifts[family.index((i, j))]) for j, c in enumerate(m.comparisons)
        )
        main = next((c.lift for c in comparisons if c.title == "skill vs baseline"), m.lift)
        result.append(replace(m, comparisons=comparisons, lift=main if m.lift else None))
    return result


def _paired_rates(per_case: Sequence[tuple[list[bool], list[bool]]]) -> PairedRates:
    return PairedRates(
        cases=len(per_case),
        answers=sum(len(w) for w, _ in per_case),
        with_skill_passed=sum(sum(w) for w, _ in per_case),
        baseline_passed=sum(sum(b) for _, b in per_case),
    )


@dataclass(frozen=True)
class RunSummary:
    """Every figure of a run, computed once: the terminal, the JSON report, the HTML
    page, the step summary and the workspace all read this, so they cannot disagree."""

    models: tuple[ModelSummary, ...]
    problems: tuple[Problem, ...]
    #: Why the session fails its gates (empty when it passes them).
    gates: tuple[str, ...]
    #: The A/A control (``--skill-aa``): how often the rule called a difference between
    #: two runs of the same arm. None without it.
    aa: AAControl | None = None


@dataclass(frozen=True)
class AAControl:
    comparisons: int
    #: Comparisons of the skill arm with itself whose verdict was not inconclusive.
    false_verdicts: int

    @property
    def rate(self) -> float | None:
        return self.false_verdicts / self.comparisons if self.comparisons else None

    @property
    def text(self) -> str:
        rate = f" ({self.rate:.0%})" if self.rate is not None else ""
        return (
            f"A/A control: skill vs aa (the same arm asked twice) was called a difference "
            f"in {self.false_verdicts} of {self.comparisons} comparison(s){rate}"
        )


def summarise_run(records: Sequence[ItemRecord], settings: Settings) -> RunSummary:
    models = adjusted(summarise(records, settings), settings.multiplicity)
    repeats = [c for m in models for c in m.comparisons if c.b == "aa" and c.lift.lift is not None]
    aa = (
        AAControl(len(repeats), sum(c.lift.verdict != "inconclusive" for c in repeats))
        if any(arm.name == "aa" for arm in settings.arms)
        else None
    )
    return RunSummary(
        models=tuple(models),
        problems=tuple(find_problems(records)),
        gates=tuple(gate_failures(models, settings)),
        aa=aa,
    )


def summarise(records: Iterable[ItemRecord], settings: Settings) -> list[ModelSummary]:
    by_model: dict[str, list[ItemRecord]] = defaultdict(list)
    order: list[str] = []
    for record in sorted_records(records):
        if record.model not in by_model:
            order.append(record.model)
        by_model[record.model].append(record)
    configured = [m.name for m in settings.models]
    order.sort(key=lambda name: configured.index(name) if name in configured else len(configured))
    summaries = []
    for name in order:
        everything = by_model[name]
        # Trigger-eval items have figures of their own, not an arm's.
        model_records = [r for r in everything if trigger_meta(r) is None]
        resolved = everything[0].resolved
        results = [r for record in model_records for r in record.results]
        with_skill = [r for r in results if r.condition == "with_skill"]
        baseline = [r for r in results if r.condition == "baseline"]
        conditions = [arm.condition for arm in settings.arms]
        conditions += sorted({r.condition for r in results} - set(conditions))
        arms = {
            condition_arm(c): _condition([r for r in results if r.condition == c], resolved)
            for c in conditions
            if any(r.condition == c for r in results)
        }
        with_summary = _condition(with_skill, resolved)
        baseline_summary = paired = lift = None
        cases = len(model_records)
        if baseline:
            per_case = _paired(model_records)
            paired = _paired_rates(per_case)
            lift = _lift(per_case, settings.trials)
            cases = paired.cases
            with_summary = _paired_rate(with_summary, paired.with_skill_passed, paired.answers)
            baseline_summary = _paired_rate(
                _condition(baseline, resolved), paired.baseline_passed, paired.answers
            )
        summaries.append(
            ModelSummary(
                model=name,
                resolved=resolved,
                cases=cases,
                with_skill=with_summary,
                baseline=baseline_summary,
                lift=lift,
                paired=paired,
                reported_models=_distinct(r.reported_model for r in results),
                adapted=_distinct(r.adapted for r in results),
                cases_total=len(model_records),
                arms=arms,
                comparisons=_comparisons(model_records, conditions, settings.trials),
                flaky=_flaky(model_records),
                trigger=trigger_figures(everything),
            )
        )
    return summaries


def _paired_rate(summary: ConditionSummary, passed: int, total: int) -> ConditionSummary:
    return replace(summary, rate=proportion(passed, total), rate_all=summary.rate)


def _distinct(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({value for value in values if value}))


# --- gates ----------------------------------------------------------------------------


def regression_failures(models: Sequence[ModelSummary]) -> list[str]:
    """``--skill-fail-on-regression``: the skill arm against the versions it is compared
    with (``ref:``/``dir:`` arms; without one, the baseline) must lose no case that
    passed there, and its verdict must not be ``hurts``."""
    failures = []
    for m in models:
        versions = [c for c in m.comparisons if c.a == "skill" and c.b.startswith(("ref:", "dir:"))]
        compared = versions or [c for c in m.comparisons if c.a == "skill" and c.b == "baseline"]
        for c in compared:
            if c.regressed:
                shown = ", ".join(c.regressed[:5]) + (" ..." if len(c.regressed) > 5 else "")
                failures.append(
                    f"{m.model}: {len(c.regressed)} case(s) regressed against {c.b}: {shown}"
                )
            elif c.lift.verdict == "hurts":
                failures.append(f"{m.model}: {c.title} hurts ({c.lift.lift or 0:+.0%})")
    return failures


def gate_failures(models: Sequence[ModelSummary], settings: Settings) -> list[str]:
    failures = regression_failures(models) if settings.fail_on_regression else []
    threshold = settings.min_lift
    if threshold is None:
        return failures
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
