"""``--skill-workspace``: the run in skill-creator's layout, so its viewer opens it.

One workspace per model, under ``DIR/<model>/``::

    benchmark.json
    eval-<N>/eval_metadata.json                      eval_id, eval_name, prompt, assertions
    eval-<N>/with_skill/run-<k>/grading.json         expectations, summary, execution_metrics
    eval-<N>/with_skill/run-<k>/timing.json          total_tokens, duration_ms, ...
    eval-<N>/with_skill/run-<k>/outputs/answer.md    the answer (error.txt for a failed call)
    eval-<N>/without_skill/run-<k>/...               the baseline

Field names follow skill-creator's ``references/schemas.md`` and the lookups its
``eval-viewer/generate_review.py`` and ``scripts/aggregate_benchmark.py`` make (checked by
running them on a workspace this module wrote). The case numbering is the same in every
model's workspace. A workspace this module wrote is replaced on the next run (a marker
file says so), keeping the review notes skill-creator's viewer saved in it; any other
non-empty directory is left alone.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_skills.checks.registry import CheckResult
from pytest_skills.formats.data import user_message
from pytest_skills.report.records import GRADED_BY_OUTCOME, CallResult, ItemRecord, sorted_records
from pytest_skills.report.run_info import RunInfo
from pytest_skills.report.summary import ModelSummary
from pytest_skills.report.text import without_surrogates

#: Our conditions under skill-creator's configuration names (its viewer keys on them).
CONFIGURATIONS = (("with_skill", "with_skill"), ("baseline", "without_skill"))
#: skill-creator's name for the previous version of a skill (a ref: or dir: arm here).
OLD_SKILL = "old_skill"


def _configurations(records: Sequence[ItemRecord]) -> tuple[tuple[str, str], ...]:
    """The configurations of these records: the compared version (the first ``ref:`` or
    ``dir:`` arm) goes under ``old_skill``, as skill-creator names it."""
    versions = sorted(
        {
            r.condition
            for rec in records
            for r in rec.results
            if r.condition.startswith(("ref:", "dir:"))
        }
    )
    return CONFIGURATIONS + (((versions[0], OLD_SKILL),) if versions else ())


MARKER = ".pytest-skills-workspace"
ANSWER_FILE = "answer.md"
#: What skill-creator's viewer writes into a workspace it serves: the reviewer's notes,
#: keyed by run directory, which a rerun must not throw away with the old answers.
REVIEWER_FILES = ("feedback.json",)


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.write_text(without_surrogates(text), encoding="utf-8")


def _round(value: float) -> float:
    return round(value, 4)


# --- one answer --------------------------------------------------------------------------


def expectations(check: CheckResult) -> list[dict[str, Any]]:
    """A check tree as skill-creator's expectations: ``all`` spread into its parts, every
    other node (a leaf, an ``any``) one statement with its evidence."""
    if check.kind == "all" and check.children:
        return [item for child in check.children for item in expectations(child)]
    if check.kind == "any" and check.children:
        text = "any of: " + "; ".join(statement(c) for c in check.children)
    else:
        text = statement(check)
    return [{"text": text, "passed": check.passed, "evidence": check.actual}]


#: Built-in kinds whose ``expected`` reads as a statement already ("contains 'x'",
#: "matches /x/"); skill-creator's viewer shows the text alone, so no "kind:" before it.
_SELF_STATED = frozenset(
    {"contains", "icontains", "not_contains", "regex", "starts_with", "json", "judge"}
)


def statement(check: CheckResult) -> str:
    """What a check expects, as one sentence: "contains 'x'", "equals 'y'"."""
    if check.kind in _SELF_STATED or check.kind.endswith(" verifier"):
        return check.expected
    if check.kind == "equals":
        return f"equals {check.expected}"
    return f"{check.kind}: {check.expected}"


def _graded_expectations(result: CallResult) -> list[dict[str, Any]]:
    if result.error is not None:
        return []
    if result.checks:
        return [item for check in result.checks for item in expectations(check)]
    if result.graded_by == GRADED_BY_OUTCOME and result.passed is not None:
        return [
            {
                "text": "the test passes",
                "passed": result.passed,
                "evidence": "graded by the outcome of the test that asked",
            }
        ]
    return []


def grading(result: CallResult) -> dict[str, Any]:
    items = _graded_expectations(result)
    passed = sum(bool(item["passed"]) for item in items)
    needs_review = []
    if result.error is not None:
        needs_review.append(f"the call failed: {result.error}")
    elif not items:
        needs_review.append("the answer was not graded (no check applied to it)")
    return {
        "expectations": items,
        "summary": {
            "passed": passed,
            "failed": len(items) - passed,
            "total": len(items),
            "pass_rate": _round(passed / len(items)) if items else 0.0,
        },
        "execution_metrics": {
            "tool_calls": {},
            "total_tool_calls": 0,
            "total_steps": 1,
            "errors_encountered": int(result.error is not None),
            "output_chars": len(result.output or ""),
            "transcript_chars": 0,
        },
        "user_notes_summary": {
            "uncertainties": [],
            "needs_review": needs_review,
            "workarounds": [],
        },
    }


def timing(result: CallResult) -> dict[str, Any]:
    latency = result.latency_s or 0.0
    return {
        "total_tokens": result.usage.total if result.usage is not None else 0,
        "duration_ms": round(latency * 1000),
        "total_duration_seconds": _round(latency),
        "executor_duration_seconds": _round(latency),
    }


def _write_run(run_dir: Path, result: CallResult, metadata: dict[str, Any]) -> dict[str, Any]:
    """One answer's directory; returns its ``result`` entry for benchmark.json."""
    graded = grading(result)
    times = timing(result)
    _dump(run_dir / "grading.json", graded)
    _dump(run_dir / "timing.json", times)
    # The viewer looks for the prompt beside a run, or one level up (the configuration).
    _dump(run_dir / "eval_metadata.json", metadata)
    outputs = run_dir / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    if result.output is not None:
        (outputs / ANSWER_FILE).write_text(without_surrogates(result.output), encoding="utf-8")
    if result.error is not None:
        (outputs / "error.txt").write_text(without_surrogates(result.error), encoding="utf-8")
    reasoning = getattr(result, "reasoning", None)
    if reasoning:
        (outputs / "reasoning.md").write_text(without_surrogates(reasoning), encoding="utf-8")
    summary = graded["summary"]
    return {
        "pass_rate": summary["pass_rate"],
        "passed": summary["passed"],
        "failed": summary["failed"],
        "total": summary["total"],
        "time_seconds": times["total_duration_seconds"],
        "tokens": times["total_tokens"],
        "tool_calls": 0,
        "errors": graded["execution_metrics"]["errors_encountered"],
    }


# --- one model ------------------------------------------------------------------------------


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "stddev": 0.0, "min": 0.0, "max": 0.0}
    return {
        "mean": _round(statistics.fmean(values)),
        "stddev": _round(statistics.stdev(values)) if len(values) > 1 else 0.0,
        "min": _round(min(values)),
        "max": _round(max(values)),
    }


def run_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean, stddev, min and max per configuration, and the with-minus-without delta."""
    summary: dict[str, Any] = {}
    for configuration in (*(name for _, name in CONFIGURATIONS), OLD_SKILL):
        results = [run["result"] for run in runs if run["configuration"] == configuration]
        if results:
            summary[configuration] = {
                metric: _stats([float(r[metric]) for r in results])
                for metric in ("pass_rate", "time_seconds", "tokens")
            }
    if "with_skill" in summary and "without_skill" in summary:
        with_skill, without = summary["with_skill"], summary["without_skill"]

        def delta(metric: str) -> float:
            return with_skill[metric]["mean"] - without[metric]["mean"]

        summary["delta"] = {
            "pass_rate": f"{delta('pass_rate'):+.2f}",
            "time_seconds": f"{delta('time_seconds'):+.1f}",
            "tokens": f"{delta('tokens'):+.0f}",
        }
    return summary


def _notes(model: ModelSummary | None, runs: Sequence[dict[str, Any]], baseline: bool) -> list[str]:
    notes = [
        "pass_rate here is the share of an answer's checks that passed (skill-creator's "
        "meaning); pytest-skills counts an answer as passing only when all of them pass."
    ]
    if model is not None and model.lift is not None and model.lift.lift is not None:
        lift = model.lift
        points = lift.lift or 0.0
        ci = f", 95% CI [{lift.ci[0] * 100:+.0f}, {lift.ci[1] * 100:+.0f}]" if lift.ci else ""
        p = f", McNemar p = {lift.p_value:.3f}" if lift.p_value is not None else ""
        notes.append(
            f"pytest-skills: lift {points * 100:+.0f} points{ci} ({lift.method}){p}; "
            f"verdict: {lift.verdict}."
        )
    if not baseline:
        notes.append(
            "No baseline was run (--no-skill-baseline): there are no without_skill runs and "
            "no delta."
        )
    errors = sum(run["result"]["errors"] for run in runs)
    if errors:
        notes.append(
            f"{errors} call(s) failed: their runs have no expectations and count as 0 here; "
            "pytest-skills leaves them out of its rates."
        )
    # skill-creator's aggregate_benchmark.py reads a token count of 0 as "not recorded"
    # and puts execution_metrics.output_chars in its place.
    uncounted = sum(
        1 for run in runs if not run["result"]["errors"] and not run["result"]["tokens"]
    )
    if uncounted:
        notes.append(
            f"{uncounted} answer(s) came without a token count (the server reported no "
            "usage): their tokens are 0 here, where skill-creator's aggregate_benchmark.py "
            "counts the answer's characters instead."
        )
    return notes


def _write_model(
    root: Path,
    model: ModelSummary | None,
    records: Sequence[ItemRecord],
    eval_ids: dict[tuple[str, str, str], int],
    eval_names: dict[tuple[str, str, str], str],
    info: RunInfo,
) -> None:
    runs: list[dict[str, Any]] = []
    for record in records:
        key = (record.skill, record.file, record.case)
        eval_id, eval_name = eval_ids[key], eval_names[key]
        with_skill = [r for r in record.results if r.condition == "with_skill"]
        assertions = [item["text"] for r in with_skill[:1] for item in _graded_expectations(r)]
        metadata = {
            "eval_id": eval_id,
            "eval_name": eval_name,
            "prompt": user_message(record.input, record.context_files),
            "assertions": assertions,
        }
        eval_dir = root / f"eval-{eval_id}"
        _dump(eval_dir / "eval_metadata.json", metadata)
        for condition, configuration in _configurations(records):
            results = sorted(
                (r for r in record.results if r.condition == condition), key=lambda r: r.trial
            )
            for number, result in enumerate(results, start=1):
                run_dir = eval_dir / configuration / f"run-{number}"
                entry = _write_run(run_dir, result, metadata)
                runs.append(
                    {
                        "eval_id": eval_id,
                        "eval_name": eval_name,
                        "configuration": configuration,
                        "run_number": number,
                        "result": entry,
                        "expectations": _graded_expectations(result),
                        "notes": grading(result)["user_notes_summary"]["needs_review"],
                    }
                )
    first = records[0]
    benchmark = {
        "metadata": {
            "skill_name": ", ".join(sorted({r.skill for r in records})) or first.model,
            "skill_path": ", ".join(sorted({str(PurePosixPath(r.file).parent) for r in records})),
            "executor_model": first.resolved,
            "analyzer_model": info.judge or "none",
            "timestamp": info.iso_timestamp,
            "evals_run": sorted({run["eval_id"] for run in runs}),
            "runs_per_configuration": info.trials,
        },
        "runs": runs,
        "run_summary": run_summary(runs),
        "notes": _notes(model, runs, info.baseline),
    }
    _dump(root / "benchmark.json", benchmark)


# --- the whole run -----------------------------------------------------------------------------


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def directory_names(models: Iterable[str]) -> dict[str, str]:
    """A directory name per model name: the name with anything unsafe replaced, unique."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for model in models:
        base = _UNSAFE.sub("-", model).strip("-.") or "model"
        name, suffix = base, 2
        while name.lower() in taken:
            name, suffix = f"{base}-{suffix}", suffix + 1
        taken.add(name.lower())
        names[model] = name
    return names


def _clear(root: Path) -> dict[str, bytes]:
    """Empty a workspace this module wrote; return the reviewer's files it held."""
    if (root / MARKER).is_file():
        kept = {
            name: (root / name).read_bytes() for name in REVIEWER_FILES if (root / name).is_file()
        }
        shutil.rmtree(root)
        return kept
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f"{root} exists and pytest-skills did not write it; give --skill-workspace an "
            "empty or new directory"
        )
    return {}


def write(
    directory: Path,
    models: Sequence[ModelSummary],
    records: Sequence[ItemRecord],
    info: RunInfo,
) -> list[Path]:
    """Write one workspace per model under ``directory``; return their paths."""
    ordered = sorted_records(records)
    keys = sorted({(r.skill, r.file, r.case) for r in ordered})
    eval_ids = {key: index for index, key in enumerate(keys, start=1)}
    several_skills = len({key[0] for key in keys}) > 1
    eval_names = {key: f"{key[0]}/{key[2]}" if several_skills else key[2] for key in keys}
    by_model: dict[str, list[ItemRecord]] = defaultdict(list)
    for record in ordered:
        by_model[record.model].append(record)
    summaries = {m.model: m for m in models}
    order = [m.model for m in models] + sorted(set(by_model) - set(summaries))
    names = directory_names(order)
    written = []
    for model in order:
        if not by_model[model]:
            continue
        root = directory / names[model]
        kept = _clear(root)
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).write_text(
            without_surrogates(f"written by pytest-skills for model {model}\n"), "utf-8"
        )
        _write_model(root, summaries.get(model), by_model[model], eval_ids, eval_names, info)
        for name, content in kept.items():
            (root / name).write_bytes(content)
        written.append(root)
    return written
