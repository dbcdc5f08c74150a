"""--skill-workspace: the run in skill-creator's layout, field names as its schemas name them.

The checks mirror what skill-creator's readers look for (references/schemas.md, and the
lookups its eval-viewer and aggregate_benchmark.py make, seen by running them on such a
workspace): runs are directories holding ``outputs/``, with the prompt in an
``eval_metadata.json`` beside them or one level up; configurations are named
``with_skill`` / ``without_skill``, and the aggregator takes every directory of a
workspace for an eval and the first configuration in name order as the one its delta
starts from; time and tokens come from ``timing.json`` when ``grading.json`` carries no
timing, and a token count of 0 is replaced by ``execution_metrics.output_chars``; the
viewer lines up a check's results across runs by the expectation's text, and saves the
reviewer's notes as ``feedback.json`` in the workspace.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_skills.checks.registry import CheckResult
from pytest_skills.models import Response, Usage
from pytest_skills.report import workspace
from pytest_skills.report.records import ItemRecord, call_result
from pytest_skills.report.run_info import RunInfo
from tests.conftest import HAIKU
from tests.loopback import LoopbackServer
from tests.report_run import GPT, HOSTILE_FILE, JUDGE, JUDGE_REASONING, MODELS, run_project

EPOCH = "1767225600"  # 2026-01-01T00:00:00Z
DIRECTORIES = {HAIKU: "anthropic-claude-haiku-4-5", GPT: "openai-gpt-4.1-mini"}
RESULT_FIELDS = {
    "pass_rate",
    "passed",
    "failed",
    "total",
    "time_seconds",
    "tokens",
    "tool_calls",
    "errors",
}
CONFIGURATION = {"with_skill": "with_skill", "without_skill": "baseline"}


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_project(tmp_path_factory.mktemp("workspace-run"), EPOCH)


@pytest.fixture(scope="module")
def report(run_dir: Path) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """The JSON report's results by (case, model, condition, trial)."""
    data = read(run_dir / "report.json")
    return {(r["case"], r["model"], r["condition"], r["trial"]): r for r in data["results"]}


def benchmark(run_dir: Path, model: str) -> dict[str, Any]:
    return read(run_dir / "workspace" / DIRECTORIES[model] / "benchmark.json")


def test_one_workspace_per_model_with_every_case_condition_and_trial(run_dir: Path) -> None:
    root = run_dir / "workspace"
    assert sorted(p.name for p in root.iterdir()) == sorted(DIRECTORIES.values())
    for name in DIRECTORIES.values():
        # One version of the aggregator takes every directory for an eval: only evals here.
        directories = [p.name for p in (root / name).iterdir() if p.is_dir()]
        assert sorted(directories) == [f"eval-{n}" for n in range(1, 6)]
        for eval_dir in (root / name).iterdir():
            if eval_dir.is_dir():
                # Its delta is the first configuration directory (by name) minus the second.
                assert sorted(p.name for p in eval_dir.iterdir() if p.is_dir()) == [
                    "with_skill",
                    "without_skill",
                ]
        runs = sorted(str(p.relative_to(root / name)) for p in (root / name).glob("eval-*/*/run-*"))
        assert runs == sorted(
            f"eval-{n}/{configuration}/run-{k}"
            for n in range(1, 6)
            for configuration in ("with_skill", "without_skill")
            for k in (1, 2)
        )


@pytest.mark.parametrize("model", MODELS)
def test_benchmark_json_fills_every_field_the_viewer_reads(run_dir: Path, model: str) -> None:
    data = benchmark(run_dir, model)
    assert data["metadata"] == {
        "skill_name": "demo, other",
        "skill_path": "demo, other",
        "executor_model": model,
        "analyzer_model": JUDGE,
        "timestamp": "2026-01-01T00:00:00Z",
        "evals_run": [1, 2, 3, 4, 5],
        "runs_per_configuration": 2,
    }
    assert len(data["runs"]) == 20
    for run in data["runs"]:
        assert set(run) == {
            "eval_id",
            "eval_name",
            "configuration",
            "run_number",
            "result",
            "expectations",
            "notes",
        }
        assert run["configuration"] in ("with_skill", "without_skill")
        assert run["run_number"] in (1, 2)
        assert run["eval_name"].startswith(("demo/", "other/"))
        result = run["result"]
        assert set(result) == RESULT_FIELDS
        assert result["total"] == 1 and result["passed"] + result["failed"] == 1
        assert result["pass_rate"] == result["passed"]
        assert result["tokens"] > 0 and result["time_seconds"] > 0 and result["errors"] == 0
        for expectation in run["expectations"]:
            assert set(expectation) == {"text", "passed", "evidence"}
            assert expectation["text"] and expectation["evidence"]
    summary = data["run_summary"]
    assert list(summary) == ["with_skill", "without_skill", "delta"]  # the viewer's order
    for configuration in ("with_skill", "without_skill"):
        assert set(summary[configuration]) == {"pass_rate", "time_seconds", "tokens"}
        for stats in summary[configuration].values():
            assert set(stats) == {"mean", "stddev", "min", "max"}
    delta = summary["delta"]
    assert re.fullmatch(r"[+-]\d\.\d\d", delta["pass_rate"])
    assert re.fullmatch(r"[+-]\d+\.\d", delta["time_seconds"])
    assert re.fullmatch(r"[+-]\d+", delta["tokens"])


def test_the_pass_rates_and_lift_are_this_runs(run_dir: Path) -> None:
    haiku, gpt = benchmark(run_dir, HAIKU), benchmark(run_dir, GPT)
    # Haiku passes 4 of 5 cases with the skill and 1 without; the other model 1 and 1.
    assert haiku["run_summary"]["with_skill"]["pass_rate"]["mean"] == 0.8
    assert haiku["run_summary"]["without_skill"]["pass_rate"]["mean"] == 0.2
    assert haiku["run_summary"]["delta"]["pass_rate"] == "+0.60"
    assert gpt["run_summary"]["delta"]["pass_rate"] == "+0.00"
    assert any(note.startswith("pytest-skills: lift +60 points") for note in haiku["notes"])


def test_every_run_holds_the_answer_its_grading_and_timing(
    run_dir: Path, report: dict[tuple[str, str, str, int], dict[str, Any]]
) -> None:
    for model, directory in DIRECTORIES.items():
        root = run_dir / "workspace" / directory
        for run_dir_ in root.glob("eval-*/*/run-*"):
            metadata = read(run_dir_.parent.parent / "eval_metadata.json")
            case = metadata["eval_name"].split("/", 1)[1]
            condition = CONFIGURATION[run_dir_.parent.name]
            trial = int(run_dir_.name.split("-")[1]) - 1
            expected = report[(case, model, condition, trial)]
            assert [p.name for p in (run_dir_ / "outputs").iterdir()] == ["answer.md"]
            assert (run_dir_ / "outputs" / "answer.md").read_text() == expected["output"]
            grading = read(run_dir_ / "grading.json")
            assert "timing" not in grading  # so time and tokens are read from timing.json
            assert (grading["summary"]["failed"] == 0) is expected["passed"]
            assert grading["summary"]["total"] == len(grading["expectations"]) == 1
            timing = read(run_dir_ / "timing.json")
            assert timing["total_tokens"] == sum(expected["usage"].values())
            assert timing["total_duration_seconds"] == round(expected["latency_s"], 4)
            assert timing["duration_ms"] == round(expected["latency_s"] * 1000)
            if case == "judged" and model == HAIKU and condition == "with_skill":
                (judged,) = grading["expectations"]
                assert judged["passed"] and JUDGE_REASONING in judged["evidence"]


def test_a_check_reads_the_same_in_every_run_of_its_eval(run_dir: Path) -> None:
    # The viewer's per-eval table puts a check's results in one row by its text.
    for directory in DIRECTORIES.values():
        for eval_dir in (run_dir / "workspace" / directory).glob("eval-*"):
            texts = {
                tuple(e["text"] for e in read(grading)["expectations"])
                for grading in eval_dir.glob("*/run-*/grading.json")
            }
            assert len(texts) == 1, (eval_dir, texts)


def test_the_summary_is_what_skill_creators_aggregation_computes_from_the_files(
    run_dir: Path,
) -> None:
    for model, directory in DIRECTORIES.items():
        root = run_dir / "workspace" / directory
        recomputed = {}
        for configuration in ("with_skill", "without_skill"):
            runs = sorted(root.glob(f"eval-*/{configuration}/run-*"))
            values = {
                "pass_rate": [read(r / "grading.json")["summary"]["pass_rate"] for r in runs],
                "time_seconds": [read(r / "timing.json")["total_duration_seconds"] for r in runs],
                "tokens": [read(r / "timing.json")["total_tokens"] for r in runs],
            }
            recomputed[configuration] = {
                metric: {
                    "mean": round(statistics.fmean(xs), 4),
                    "stddev": round(statistics.stdev(xs), 4),
                    "min": round(min(xs), 4),
                    "max": round(max(xs), 4),
                }
                for metric, xs in values.items()
            }
        summary = benchmark(run_dir, model)["run_summary"]
        assert {k: v for k, v in summary.items() if k != "delta"} == recomputed


def test_the_viewer_finds_a_prompt_beside_every_run(run_dir: Path) -> None:
    root = run_dir / "workspace" / DIRECTORIES[HAIKU]
    runs = [p.parent for p in root.rglob("outputs")]
    assert len(runs) == 20
    for run in runs:
        assert re.search(r"(with_skill|without_skill)", str(run.relative_to(root)))
        metadata = read(run / "eval_metadata.json")
        assert metadata == read(run.parent.parent / "eval_metadata.json")
        assert set(metadata) == {"eval_id", "eval_name", "prompt", "assertions"}
        assert metadata["prompt"] and metadata["assertions"]
        assert (run / "grading.json").is_file()
    hostile = next(
        read(p) for p in root.glob("eval-*/eval_metadata.json") if "hostile" in read(p)["eval_name"]
    )
    # The prompt is the one the model got: the input, then the context file, fenced.
    assert hostile["prompt"] == f"a hostile question\n\nFile `evil.html`:\n```\n{HOSTILE_FILE}\n```"
    assert hostile["assertions"] == ["contains 'never said'"]


# --- rewriting, failed calls, foreign directories ------------------------------------------------

INFO = RunInfo(
    models=(("m", "openai:m"),),
    judge=None,
    cache_mode="off",
    cache_mode_reason="test",
    trials=1,
    pass_threshold=1.0,
    baseline=True,
    timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
    plugin_version="test",
)

USAGE = Usage(5, 7)


def record(
    case: str,
    *,
    error: str | None = None,
    usage: Usage = USAGE,
    conditions: tuple[str, ...] = ("with_skill", "baseline"),
) -> ItemRecord:
    answer = None if error else Response(text=f"answer to {case}", usage=usage, latency_s=0.5)
    results = tuple(
        call_result(
            condition=condition,
            trial=0,
            cache_key=f"{case}-{condition}",
            response=answer,
            error=error,
            passed=True,
            graded_by="check",
            redact=str,
        )
        for condition in conditions
    )
    return ItemRecord(
        nodeid=f"s/s.skill.yaml::{case}[m]",
        skill="s",
        case=case,
        file="s/s.skill.yaml",
        model="m",
        resolved="openai:m",
        results=results,
        input=f"question {case}",
    )


def test_a_new_run_replaces_the_workspace_it_wrote(tmp_path: Path) -> None:
    workspace.write(tmp_path, [], [record("a"), record("b")], INFO)
    assert (tmp_path / "m" / "eval-2").is_dir()
    workspace.write(tmp_path, [], [record("a")], INFO)
    assert not (tmp_path / "m" / "eval-2").exists()  # no stale case for the viewer to show
    assert read(tmp_path / "m" / "benchmark.json")["metadata"]["evals_run"] == [1]


def test_a_new_run_keeps_the_review_notes_skill_creators_viewer_saved(tmp_path: Path) -> None:
    workspace.write(tmp_path, [], [record("a"), record("b")], INFO)
    notes = '{"reviews": [{"run_id": "eval-1-with_skill-run-1", "feedback": "too long"}]}\n'
    (tmp_path / "m" / "feedback.json").write_text(notes)
    workspace.write(tmp_path, [], [record("a")], INFO)
    assert (tmp_path / "m" / "feedback.json").read_text() == notes
    assert not (tmp_path / "m" / "eval-2").exists()


def test_an_answer_without_a_token_count_is_said_to_differ_from_the_aggregator(
    tmp_path: Path,
) -> None:
    workspace.write(tmp_path, [], [record("a", usage=Usage())], INFO)
    run = tmp_path / "m" / "eval-1" / "with_skill" / "run-1"
    # aggregate_benchmark.py reads 0 tokens as none recorded and takes output_chars instead.
    assert read(run / "timing.json")["total_tokens"] == 0
    assert read(run / "grading.json")["execution_metrics"]["output_chars"] == len("answer to a")
    data = read(tmp_path / "m" / "benchmark.json")
    assert data["run_summary"]["with_skill"]["tokens"]["mean"] == 0
    assert any(note.startswith("2 answer(s) came without a token count") for note in data["notes"])


def test_without_a_baseline_there_is_one_configuration_and_no_delta(tmp_path: Path) -> None:
    info = dataclasses.replace(INFO, baseline=False)
    workspace.write(tmp_path, [], [record("a", conditions=("with_skill",))], info)
    assert [p.name for p in (tmp_path / "m" / "eval-1").iterdir() if p.is_dir()] == ["with_skill"]
    data = read(tmp_path / "m" / "benchmark.json")
    assert list(data["run_summary"]) == ["with_skill"]
    assert any(note.startswith("No baseline was run") for note in data["notes"])


def test_a_failed_call_is_a_run_with_an_error(tmp_path: Path) -> None:
    workspace.write(tmp_path, [], [record("a", error="HTTP 529 overloaded")], INFO)
    run = tmp_path / "m" / "eval-1" / "with_skill" / "run-1"
    assert (run / "outputs" / "error.txt").read_text() == "HTTP 529 overloaded"
    grading = read(run / "grading.json")
    assert grading["execution_metrics"]["errors_encountered"] == 1
    assert grading["user_notes_summary"]["needs_review"] == ["the call failed: HTTP 529 overloaded"]
    data = read(tmp_path / "m" / "benchmark.json")
    assert {r["result"]["errors"] for r in data["runs"]} == {1}
    assert any("2 call(s) failed" in note for note in data["notes"])


def test_a_directory_it_did_not_write_is_left_alone(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    pytester.makefile(".skill.yaml", demo="cases:\n  - {id: c, input: q, expect: {contains: echo}}")
    pytester.makefile(".md", SKILL="---\nname: demo\ndescription: A demo.\n---\nBe brief.\n")
    mine = pytester.path / "ws" / "anthropic-claude-haiku-4-5" / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("my own notes")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off",
        "--skill-workspace=ws",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["skills: cannot write the report: *anthropic-claude-haiku-4-5 exists and "
         "pytest-skills did not write it; give --skill-workspace an empty or new directory*"]
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert mine.read_text() == "my own notes"
    assert "Traceback" not in result.stdout.str()


def test_model_names_become_distinct_directory_names() -> None:
    assert workspace.directory_names(
        ["openai:qwen3@http://127.0.0.1:8080/v1", "a/b", "a:b", "..", "gguf:/m/x.gguf"]
    ) == {
        "openai:qwen3@http://127.0.0.1:8080/v1": "openai-qwen3-http-127.0.0.1-8080-v1",
        "a/b": "a-b",
        "a:b": "a-b-2",
        "..": "model",
        "gguf:/m/x.gguf": "gguf-m-x.gguf",
    }


def test_each_expectation_reads_as_one_statement() -> None:
    def leaf(kind: str, expected: str) -> CheckResult:
        return CheckResult(kind, True, expected, "seen")

    tree = CheckResult(
        "all",
        True,
        "all of 4",
        "4 passed",
        children=(
            leaf("contains", "contains 'sm_90a'"),
            leaf("equals", "'42'"),
            leaf("command verifier", "`make` exits with status 0 within 30s"),
            leaf("house_style", "no exclamation marks"),  # a plugin's kind keeps its name
        ),
    )
    assert [e["text"] for e in workspace.expectations(tree)] == [
        "contains 'sm_90a'",
        "equals '42'",
        "`make` exits with status 0 within 30s",
        "house_style: no exclamation marks",
    ]
