"""The skill_model fixture: skill tests written in Python, through the same models and cache."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

# Imported up front: pytester's in-process runs would otherwise re-import the SDKs.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import HAIKU, SKILL_MD, output
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.usefixtures("provider_env")

SKILL_BLOCK = "# Skill: demo\n\nWhen asked anything, mention the word demo.\n"
MINI = "openai:gpt-4.1-mini"


def make_skill(root: Path, name: str = "demo") -> Path:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SKILL.md").write_text(SKILL_MD.format(name=name, marker=name))
    return directory


def run(
    pytester: pytest.Pytester, *args: str, models: tuple[str, ...] = (HAIKU,), cache: str = "off"
) -> pytest.RunResult:
    model_args = [arg for model in models for arg in ("--skill-model", model)]
    return pytester.runpytest(
        *model_args, "-p", "no:cacheprovider", f"--skill-cache={cache}", *args
    )


def write_test(pytester: pytest.Pytester, source: str, name: str = "test_app") -> Path:
    return pytester.makepyfile(**{name: textwrap.dedent(source)})


def results_by(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["nodeid"], r["condition"]): r for r in report["results"]}


ASK_BOTH = """
    import pytest

    @pytest.mark.skill("demo")
    def test_ask(skill_model):
        answer = skill_model.ask("Name the topic")
        assert answer.text == "echo: Name the topic | skill: # Skill: demo"
        assert answer.condition == "with_skill" and answer.model == skill_model.name
        assert answer.usage.output_tokens == len(answer.text.split())
        assert answer.latency_s >= 0 and answer.replayed is False
        base = skill_model.ask("Name the topic", baseline=True)
        assert base.text == "echo: Name the topic"
        assert base.condition == "baseline" and base.skill is None
"""


# --- parametrisation and skipping -----------------------------------------------------------


def test_one_test_per_model_with_the_model_as_id(pytester: pytest.Pytester) -> None:
    make_skill(pytester.path)
    write_test(pytester, ASK_BOTH)
    result = run(pytester, "--collect-only", "-q", models=(HAIKU, MINI))
    result.stdout.fnmatch_lines(
        [
            f"test_app.py::test_ask[[]{HAIKU}[]]",
            f"test_app.py::test_ask[[]{MINI}[]]",
        ]
    )
    assert "2 tests collected" in result.stdout.str()


def test_without_a_model_the_test_skips_like_skill_items(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    make_skill(pytester.path)
    write_test(pytester, textwrap.dedent(ASK_BOTH) + "\n\ndef test_plain():\n    assert True\n")
    result = run(pytester, "-rs", models=())
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] test_app.py:*: no skill model named: pass --skill-model SPEC*"]
    )
    assert loopback.calls == []


def test_fixture_tests_carry_the_skill_marker(pytester: pytest.Pytester) -> None:
    make_skill(pytester.path)
    write_test(
        pytester,
        """
        def test_unmarked(skill_model):
            skill_model.ask("hi", baseline=True)

        def test_plain():
            pass
    """,
    )
    result = run(pytester, "-m", "not skill", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["test_app.py::test_plain PASSED*"])
    selected = run(pytester, "-m", "skill", "--strict-markers")
    selected.assert_outcomes(passed=1, deselected=1)


# --- asking ----------------------------------------------------------------------------------


def test_ask_with_the_skill_sends_it_and_baseline_does_not(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    make_skill(pytester.path)
    write_test(pytester, ASK_BOTH)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    calls = loopback.calls
    assert [(c.prompt, c.system) for c in calls] == [
        ("Name the topic", SKILL_BLOCK),
        ("Name the topic", None),
    ]
    assert {(c.api, c.model) for c in calls} == {("anthropic", "claude-haiku-4-5")}


def test_ask_sends_files_and_sampling(pytester: pytest.Pytester, loopback: LoopbackServer) -> None:
    make_skill(pytester.path)
    write_test(
        pytester,
        """
        def test_files(skill_model):
            skill_model.ask("Read it", skill="demo", files={"notes.txt": "hello"},
                            max_tokens=77)
    """,
    )
    run(pytester, models=(MINI,)).assert_outcomes(passed=1)
    (call,) = loopback.calls
    assert call.prompt == "Read it\n\nFile `notes.txt`:\n```\nhello\n```"
    assert call.body["max_completion_tokens"] == 77  # what the public API documents now
    assert call.system == SKILL_BLOCK


def test_second_run_is_replayed(
    pytester: pytest.Pytester,
    loopback: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    make_skill(pytester.path)
    write_test(
        pytester,
        """
        import os
        import pytest

        @pytest.mark.skill("demo")
        def test_replay(skill_model):
            expected = os.environ["EXPECT_REPLAYED"] == "1"
            assert skill_model.ask("Q").replayed is expected
            assert skill_model.ask("Q", baseline=True).replayed is expected
    """,
    )
    args = ("--skill-cache-dir", str(tmp_path / "cache"))
    monkeypatch.setenv("EXPECT_REPLAYED", "0")
    run(pytester, *args, cache="auto").assert_outcomes(passed=1)
    assert len(loopback.calls) == 2
    monkeypatch.setenv("EXPECT_REPLAYED", "1")
    report = tmp_path / "report.json"
    run(pytester, *args, "--skill-report", str(report), cache="replay").assert_outcomes(passed=1)
    assert len(loopback.calls) == 2  # nothing called the second time
    assert all(r["cached"] for r in json.loads(report.read_text())["results"])


# --- records: summary and JSON report ---------------------------------------------------------

RECORDED = """
    import pytest

    pytestmark = pytest.mark.skill("demo")

    def test_judged(skill_model):
        # The baseline is graded with the check applied to the with-skill answer.
        answer = skill_model.ask("Topic?")
        skill_model.ask("Topic?", baseline=True)
        assert answer.check({"contains": "skill: # Skill: demo"}).passed

    def test_outcome_only(skill_model):
        # Unjudged: with skill = the test's outcome; baseline = left out of the rates.
        skill_model.ask("Other?")
        skill_model.ask("Other?", baseline=True)
        assert False, "the test decides"

    def test_own_checks(skill_model):
        answer = skill_model.ask("Third?")
        base = skill_model.ask("Third?", baseline=True)
        assert answer.check({"contains": "Third"}).passed
        assert base.check({"contains": "Third"}).passed
"""


def test_records_reach_the_summary_and_the_json_report(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    make_skill(pytester.path)
    write_test(pytester, RECORDED)
    report_path = tmp_path / "report.json"
    result = run(pytester, "--skill-report", str(report_path), models=("haiku",))
    result.assert_outcomes(passed=2, failed=1)
    # 3 cases; with skill: judged pass, outcome fail, check pass = 2/3;
    # baseline: judged fail, left out, check pass = 1/2.
    # The lift pairs cases graded in both conditions (2): the row shows those, so
    # with skill minus baseline is the lift; the third case is named in a note.
    result.stdout.re_match_lines([r"^haiku\s+2\s+2/2\s+100%\s+1/2\s+50%\s+\+50pp"])
    result.stdout.fnmatch_lines(["  haiku: 1 of 3 cases left out of the figures*"])

    report = json.loads(report_path.read_text())
    (model,) = report["models"]
    # The same figures as the table: the cases graded in both conditions.
    assert (model["cases"], model["cases_total"]) == (2, 3)
    assert (model["with_skill"]["passed"], model["with_skill"]["total"]) == (2, 2)
    assert (model["baseline"]["passed"], model["baseline"]["total"]) == (1, 2)
    by = results_by(report)
    assert len(by) == 6
    judged = by[("test_app.py::test_judged[haiku]", "with_skill")]
    assert judged["passed"] is True and judged["graded_by"] == "check"
    assert judged["output"] == "echo: Topic? | skill: # Skill: demo"
    assert judged["usage"]["output_tokens"] == 7
    assert judged["cached"] is False and judged["latency_s"] >= 0
    judged_base = by[("test_app.py::test_judged[haiku]", "baseline")]
    assert judged_base["passed"] is False and judged_base["graded_by"] == "check"
    outcome = by[("test_app.py::test_outcome_only[haiku]", "with_skill")]
    assert outcome["passed"] is False and outcome["graded_by"] == "test outcome"
    left_out = by[("test_app.py::test_outcome_only[haiku]", "baseline")]
    assert left_out["passed"] is None and left_out["graded_by"] is None
    assert left_out["output"] == "echo: Other?"
    assert {r["skill"] for r in report["results"]} == {"demo"}
    assert {r["case"] for r in report["results"]} == {
        "test_judged",
        "test_outcome_only",
        "test_own_checks",
    }
    assert all("cache_key" not in r for r in report["results"])


def test_records_survive_xdist(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    make_skill(pytester.path)
    write_test(pytester, RECORDED)
    report_path = tmp_path / "report.json"
    result = pytester.runpytest_subprocess(
        "--skill-model",
        "haiku",
        "-p",
        "no:cacheprovider",
        "--skill-cache=off",
        "-n",
        "2",
        "--skill-report",
        str(report_path),
    )
    result.assert_outcomes(passed=2, failed=1)
    # The lift pairs cases graded in both conditions (2): the row shows those, so
    # with skill minus baseline is the lift; the third case is named in a note.
    result.stdout.re_match_lines([r"^haiku\s+2\s+2/2\s+100%\s+1/2\s+50%\s+\+50pp"])
    result.stdout.fnmatch_lines(["  haiku: 1 of 3 cases left out of the figures*"])
    assert len(json.loads(report_path.read_text())["results"]) == 6


def test_require_fails_the_test_with_expected_and_actual(pytester: pytest.Pytester) -> None:
    make_skill(pytester.path)
    write_test(
        pytester,
        """
        import pytest

        @pytest.mark.skill("demo")
        def test_require(skill_model):
            skill_model.ask("Q").require({"contains": "absent"})
    """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*{HAIKU}: the with skill answer failed",
            "  contains failed",
            "    expected: contains 'absent'",
            "    actual:   missing 'absent'",
            "answer:",
            "echo: Q | skill: # Skill: demo",
        ]
    )
    assert "Traceback" not in output(result)


# --- where the skill comes from ---------------------------------------------------------------


def test_marker_paths_are_relative_to_the_test_file(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    make_skill(pytester.path / "skills", "demo")
    other = make_skill(pytester.path / "skills", "other")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_where.py").write_text(
        textwrap.dedent(f"""
        import pytest

        @pytest.mark.skill("../skills/demo")
        def test_marker(skill_model):
            assert "Skill: demo" in skill_model.ask("from the marker").text

        @pytest.mark.skill("../skills/demo")
        def test_argument_wins(skill_model):
            answer = skill_model.ask("a SKILL.md", skill="../skills/other/SKILL.md")
            assert "Skill: other" in answer.text

        @pytest.mark.skill(path="../skills/demo")
        class TestClass:
            def test_class_marker(self, skill_model):
                assert "Skill: demo" in skill_model.ask("from the class").text

        def test_absolute(skill_model):
            assert "Skill: other" in skill_model.ask("absolute", skill={str(other)!r}).text
    """)
    )
    result = run(pytester, "-v")
    result.assert_outcomes(passed=4)
    systems = {c.prompt: (c.system or "").splitlines()[0] for c in loopback.calls}
    assert systems == {
        "from the marker": "# Skill: demo",
        "a SKILL.md": "# Skill: other",
        "from the class": "# Skill: demo",
        "absolute": "# Skill: other",
    }


def test_no_skill_and_a_missing_skill_fail_clearly(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    write_test(
        pytester,
        """
        import pytest

        def test_no_skill(skill_model):
            skill_model.ask("Q")

        @pytest.mark.skill("nowhere")
        def test_missing(skill_model):
            skill_model.ask("Q")
    """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*no skill to ask with: pass skill='path/to/skill' or mark the test with "
            "@pytest.mark.skill('path/to/skill')*",
            "*no skill at */nowhere: name a skill directory or its SKILL.md, "
            "relative to the test file",
        ]
    )
    assert "Traceback" not in output(result)
    assert loopback.calls == []


# --- call errors -----------------------------------------------------------------------------


def test_missing_key_fails_the_test_without_traceback(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    make_skill(pytester.path)
    write_test(pytester, ASK_BOTH)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"{HAIKU}: Anthropic needs an API key: ANTHROPIC_API_KEY is not set*"]
    )
    text = output(result)
    assert "Traceback" not in text and "def test_ask" not in text
    assert loopback.calls == []


def test_replay_miss_says_how_to_record(
    pytester: pytest.Pytester, tmp_path: Path, loopback: LoopbackServer
) -> None:
    make_skill(pytester.path)
    write_test(pytester, ASK_BOTH)
    result = run(pytester, "--skill-cache-dir", str(tmp_path / "empty"), cache="replay")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"{HAIKU}: not in the cache (no cache at {tmp_path / 'empty'}: it has no cache.db) "
            "(the skills summary says how to fix it)",
        ]
    )
    # One command records every missing answer of the model, said once in the summary.
    result.stdout.fnmatch_lines(
        [
            f"  {HAIKU}: 1 answer(s) not in the cache: record them with the model reachable:",
            f"    pytest test_app.py --skill-model {HAIKU} --skill-cache=auto",
        ]
    )
    assert loopback.calls == []


def test_prune_keeps_the_fixtures_entries(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    make_skill(pytester.path)
    source = """
        import pytest

        @pytest.mark.skill("demo")
        def test_asks(skill_model):
            skill_model.ask("Kept")
            skill_model.ask("Kept", baseline=True)
            skill_model.ask("Dropped later", baseline=True)
    """
    write_test(pytester, source)
    # Inside the rootdir: a cache dir outside it would move the rootdir once it exists.
    args = ("--skill-cache-dir", str(pytester.path / "cache"), "--skill-cache-prune")
    run(pytester, *args, cache="auto").assert_outcomes(passed=1)
    write_test(pytester, source.replace('skill_model.ask("Dropped later", baseline=True)', ""))
    pruned = run(pytester, *args, cache="auto")
    pruned.assert_outcomes(passed=1)
    # Only the entry no test asked for any more goes; the test's recorded keys stay.
    pruned.stdout.fnmatch_lines(["skills: 1 cache entries removed"])
    run(pytester, *args, cache="replay").assert_outcomes(passed=1)
    assert len(loopback.calls) == 3
