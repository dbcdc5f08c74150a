"""Trials, pass thresholds, lift gates, JUnit properties and the GitHub step summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import pytest

from tests.conftest import HAIKU, write_skill
from tests.loopback import Call, LoopbackServer, echo

# Two cases the skill fixes, one it cannot: a lift of 2/3.
CASES = """
    cases:
      - {id: fixed-1, input: first question, expect: {contains: "skill: demo"}}
      - {id: fixed-2, input: second question, expect: {contains: "skill: demo"}}
      - {id: unfixable, input: third question, expect: {contains: never said}}
"""


def run(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, "--skill-cache=off", "-p", "no:cacheprovider", *args
    )


def test_min_lift_gate_fails_the_session_with_a_message(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    passing = run(pytester, tmp_path, "--skill-min-lift", "50")
    passing.assert_outcomes(passed=2, failed=1)
    assert "GATE FAILED" not in passing.stdout.str()

    gated = run(pytester, tmp_path, "--skill-min-lift", "70")
    gated.stdout.fnmatch_lines(
        ["*GATE FAILED: anthropic:claude-haiku-4-5: lift +66.7 points is below the required 70*"]
    )
    assert gated.ret == pytest.ExitCode.TESTS_FAILED


def test_significance_gate_uses_the_interval_lower_bound(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - {id: only, input: question, expect: {contains: "skill: demo"}}
    """,
    )
    # One case lifts 100 points, yet its interval reaches far below 10.
    result = run(pytester, tmp_path, "--skill-min-lift", "10:ci")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*GATE FAILED*95% interval starts at*below the required 10*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_gate_without_a_baseline_says_so(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path)
    result = run(pytester, tmp_path, "--skill-min-lift", "1", "--no-skill-baseline")
    result.stdout.fnmatch_lines(["*GATE FAILED*no lift measured*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


class Flaky:
    """Answers with the skill's marker on two trials out of three."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str | None, str], int] = {}

    def __call__(self, call: Call) -> str:
        key = (call.system, call.prompt)
        self.counts[key] = self.counts.get(key, 0) + 1
        return echo(call) if self.counts[key] % 3 else "I do not know"


def test_trials_repeat_every_condition_and_the_threshold_sets_the_verdict(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    provider_env.responder = Flaky()
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - {id: flaky, input: question, expect: {contains: "skill: demo"}}
    """,
    )
    report = tmp_path / "report.json"
    strict = run(pytester, tmp_path, "--skill-trials", "3", f"--skill-report={report}")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*with the skill, 2 of 3 trial(s) passed (needed 3)*"])
    assert len(provider_env.calls) == 6
    data = json.loads(report.read_text())
    assert sorted(r["trial"] for r in data["results"]) == [0, 0, 1, 1, 2, 2]
    assert data["models"][0]["with_skill"] == {
        "passed": 2,
        "total": 3,
        "rate": 2 / 3,
        "ci": data["models"][0]["with_skill"]["ci"],
    }
    assert data["models"][0]["lift_method"] == "newcombe11-cases+signflip"

    provider_env.responder = Flaky()
    lenient = run(pytester, tmp_path, "--skill-trials", "3", "--skill-pass-threshold", "0.6")
    lenient.assert_outcomes(passed=1)


def test_junit_xml_carries_the_per_item_facts(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    junit = tmp_path / "junit.xml"
    run(pytester, tmp_path, f"--junitxml={junit}")
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    fixed = {
        p.get("name"): p.get("value")
        for p in cases["fixed-1[anthropic:claude-haiku-4-5]"].iter("property")
    }
    assert fixed["skill_with_skill"] == "1/1"
    assert fixed["skill_baseline"] == "0/1"
    record = json.loads(fixed["pytest_skills"])
    assert record["case"] == "fixed-1" and record["results"][0]["output"].startswith("echo:")


def test_github_step_summary_gets_a_markdown_table(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier content\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_skill(pytester.path, cases_yaml=CASES)
    run(pytester, tmp_path)
    text = summary.read_text()
    assert text.startswith("earlier content\n")
    assert "| anthropic:claude-haiku-4-5 | 3 | 2/3 (67%) | 0/3 (0%) | +67 pp | " in text
    # The interval and verdict are in the table; the failing case is listed with its answer.
    row = next(line for line in text.splitlines() if line.startswith("| anthropic:"))
    assert row.endswith(" pp | 0.500 | inconclusive |") and " to +" in row
    assert "#### Failing with the skill (1)" in text
    assert "| anthropic:claude-haiku-4-5 | `demo/demo.skill.yaml::unfixable[" in text
    # A pipe in an answer is escaped so the table keeps its columns.
    assert "echo: third question \\| skill: # Skill: demo" in text


def test_verbose_adds_a_per_skill_breakdown_and_every_line_fits_100_columns(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    write_skill(
        pytester.path,
        "second-skill-with-a-long-name",
        cases_yaml="""
        cases:
          - {id: one, input: question, expect: {contains: echo}}
    """,
    )
    result = pytester.runpytest(
        "--skill-model",
        HAIKU,
        "--skill-model",
        "openai:gpt-4.1-mini-with-a-rather-long-model-name",
        "--skill-cache=off",
        "-p",
        "no:cacheprovider",
        "-v",
    )
    lines = result.stdout.lines
    start = lines.index("pass rate with and without the skill")
    table = lines[start:]
    table = table[: next(i for i, line in enumerate(table) if line.startswith("=="))]
    assert all(len(line) <= 100 for line in table), max(table, key=len)
    result.stdout.fnmatch_lines(["by skill", "*second-skill-with-a-long-name*"])


def test_prompt_cache_tokens_and_latency_change_are_shown(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    report = tmp_path / "report.json"
    result = run(pytester, tmp_path, f"--skill-report={report}", "--skill-concurrency=1")
    # The first with-skill call writes the skill into the provider's prompt cache and
    # the two after it read it: the loopback counts them as Anthropic does.
    tokens = json.loads(report.read_text())["models"][0]["tokens"]
    assert tokens["cache_write"] > 0 and tokens["cache_read"] == 2 * tokens["cache_write"]
    result.stdout.fnmatch_lines(
        [
            "*tokens per call: * with the skill, * without (+*%)*",
            "*prompt cache per with-skill call: * tokens read, * tokens written",
        ]
    )
