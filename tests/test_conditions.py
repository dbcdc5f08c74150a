"""With and without the skill: both called, the verdict from the with-skill answer,
the summary table."""

from __future__ import annotations

from pathlib import Path

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import write_skill
from tests.loopback import LoopbackServer
from tests.plugin_runs import ID, ROW, SKILL_BLOCK, read_report, run

pytestmark = pytest.mark.usefixtures("provider_env")


def test_with_skill_and_baseline_are_both_called(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    write_skill(pytester.path)
    result = run(pytester)
    result.assert_outcomes(passed=2)
    calls = loopback.calls
    assert len(calls) == 4  # 2 cases x (with skill, baseline)
    assert sorted((c.prompt, c.system or "") for c in calls) == [
        ("Repeat after me", ""),
        ("Repeat after me", SKILL_BLOCK),
        ("Tell me about the topic", ""),
        ("Tell me about the topic", SKILL_BLOCK),
    ]
    assert {(c.api, c.model) for c in calls} == {("anthropic", "claude-haiku-4-5")}


def test_baseline_failures_never_fail_a_test(pytester: pytest.Pytester) -> None:
    # `mentions-skill` fails at baseline (no skill, no mention) and still passes.
    write_skill(pytester.path)
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines_random(
        [
            f"demo/demo.skill.yaml::mentions-skill{ID} PASSED*",
            f"demo/demo.skill.yaml::echoes{ID} PASSED*",
        ]
    )
    result.stdout.re_match_lines([ROW])


def test_verdict_comes_from_the_with_skill_answer(pytester: pytest.Pytester) -> None:
    # Passes without the skill, fails with it: the item fails.
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - id: no-skill-please
            input: Anything
            expect:
              not_contains: "skill:"
    """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [r"anthropic:claude-haiku-4-5\s+1\s+0/1\s+0%\s+1/1\s+100%\s+-100pp"]
    )


def test_summary_table(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester)
    result.stdout.fnmatch_lines(
        [
            "=* skills =*",
            "pass rate with and without the skill",
            "model * cases  with skill * baseline * lift  95% CI * p  verdict",
        ]
    )
    result.stdout.re_match_lines([ROW + r"\[[-+]\d+,[-+]\d+\]\s+1\.000\s+inconclusive$"])
    # Tokens per call, named as such: with the skill, without it, and the change.
    result.stdout.re_match_lines(
        [r"  \S+: tokens per call: \d+ with the skill, \d+ without \(\+\d+%\)"]
    )
    # Two items and four calls, none cached: the progress line says so (not a tty: once).
    result.stdout.fnmatch_lines(["skills: 4 calls: 4 live, 0 from the cache, 0 failed (*s)"])


def test_no_baseline(pytester: pytest.Pytester, loopback: LoopbackServer, tmp_path: Path) -> None:
    write_skill(pytester.path)
    report = tmp_path / "report.json"
    result = run(pytester, "--no-skill-baseline", "--skill-report", str(report))
    result.assert_outcomes(passed=2)
    assert len(loopback.calls) == 2
    assert all(call.system == SKILL_BLOCK for call in loopback.calls)
    result.stdout.re_match_lines([r"anthropic:claude-haiku-4-5\s+2\s+2/2\s+100%\s+skipped\s+-"])
    assert "no baseline" in result.stdout.str()  # the header says so
    (model,) = read_report(report)["models"]
    assert model["baseline"] is None
    assert model["lift"] is None and model["lift_ci"] is None and model["p_value"] is None
    assert {r["condition"] for r in read_report(report)["results"]} == {"with_skill"}
