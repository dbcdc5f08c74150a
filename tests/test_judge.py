"""The judge check kind: verdict parsing, grading through the judge model, caching."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

import anthropic  # noqa: F401  (imported once, not in every in-process run)
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from pytest_skills.checks.judge import (
    JUDGE_SYSTEM,
    Rubric,
    judge_prompt,
    parse_rubric,
    parse_verdict,
)
from tests.conftest import HAIKU, output, write_skill
from tests.loopback import Call, LoopbackServer, echo

pytestmark = pytest.mark.usefixtures("provider_env")

JUDGE = "openai:judge-model"


def judge_responder(call: Call) -> str:
    """Echo for the tested model; for the judge, PASS when the answer names the skill."""
    if not (call.system or "").startswith(JUDGE_SYSTEM.splitlines()[0]):
        return echo(call)
    rubric = call.prompt.split("## Rubric\n\n", 1)[1].split("\n\n", 1)[0]
    answer = call.prompt.split("## Answer to grade\n\n", 1)[1]
    if "mumble" in rubric:
        return "Hard to say, really."
    if "json" in rubric:
        return json.dumps({"verdict": "Pass", "reasoning": "structured"})
    ok = "skill:" in answer and "impossible" not in rubric
    return (
        f"The answer {'names' if ok else 'does not name'} the skill.\n\n"
        f"**VERDICT: {'PASS' if ok else 'FAIL'}**."
    )


@pytest.fixture
def judge(loopback: LoopbackServer) -> LoopbackServer:
    loopback.responder = judge_responder
    return loopback


def judge_calls(server: LoopbackServer) -> list[Call]:
    return [c for c in server.calls if c.model == "judge-model"]


def run(
    pytester: pytest.Pytester, *args: str, judge_model: str | None = JUDGE, cache: str = "off"
) -> pytest.RunResult:
    judge_args = ("--skill-judge-model", judge_model) if judge_model else ()
    return pytester.runpytest(
        "--skill-model",
        HAIKU,
        *judge_args,
        "-p",
        "no:cacheprovider",
        f"--skill-cache={cache}",
        *args,
    )


# --- verdicts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "verdict", "reasoning"),
    [
        ("Good answer.\nVERDICT: PASS", True, "Good answer."),
        ("Missing the flag.\n\nVERDICT: FAIL", False, "Missing the flag."),
        ("Fine.\nverdict: pass", True, "Fine."),
        ("Fine.\n**VERDICT: PASS**", True, "Fine."),
        ("Fine.\n**Verdict:** Fail.", False, "Fine."),
        ("Fine.\nVERDICT: PASS.\n", True, "Fine."),
        ("Fine.\nFinal verdict - `FAIL`!", False, "Fine."),
        ("Fine.\n## Verdict: [PASS]", True, "Fine."),
        (
            "It could be VERDICT: PASS but no.\nVERDICT: FAIL",
            False,
            "It could be VERDICT: PASS but no.",
        ),
        ('{"verdict": "PASS", "reasoning": "all there"}', True, "all there"),
        ('```json\n{"Verdict": "fail", "reason": "wrong"}\n```', False, "wrong"),
        ('Thinking...\n{"verdict": "fail"}', False, "Thinking..."),
        ("No idea.", None, "No idea."),
        ("The verdict is out; I pass on this.", None, "The verdict is out; I pass on this."),
        ("", None, ""),
    ],
)
def test_parse_verdict(reply: str, verdict: bool | None, reasoning: str) -> None:
    assert parse_verdict(reply) == (verdict, reasoning)


def test_rubric_forms() -> None:
    assert parse_rubric("names it") == Rubric("names it")
    assert parse_rubric({"rubric": "r", "reference": "ref"}) == Rubric("r", "ref")
    for bad, message in [
        ({"rubrik": "x"}, "unknown key 'rubrik'"),
        ({}, "needs 'rubric'"),
        ("  ", "empty"),
        (3.5, "rubric string"),
        ({"rubric": ["a"]}, "must be a string"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_rubric(bad)
    prompt = judge_prompt(Rubric("R", "REF", "T"), " the answer ")
    sections = [
        "## Task\n\nT",
        "## Rubric\n\nR",
        "## Reference answer\n\nREF",
        "## Answer to grade\n\nthe answer",
        "VERDICT: PASS or VERDICT: FAIL",
    ]
    positions = [prompt.index(section) for section in sections]
    assert positions == sorted(positions)


# --- grading through the judge model --------------------------------------------------------

JUDGED_CASES = """
    cases:
      - id: names-skill
        input: Tell me about the topic
        expect:
          judge: The answer names the skill it used.
"""


def test_judge_passes_and_fails_by_condition(
    pytester: pytest.Pytester, judge: LoopbackServer
) -> None:
    write_skill(pytester.path, cases_yaml=JUDGED_CASES)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines(
        [r"anthropic:claude-haiku-4-5\s+1\s+1/1\s+100%\s+0/1\s+0%\s+\+100pp"]
    )
    calls = judge_calls(judge)
    assert len(calls) == 2  # one grading per condition
    assert {c.api for c in calls} == {"openai"}
    assert all(c.system == JUDGE_SYSTEM and c.body["temperature"] == 0 for c in calls)
    assert sorted("skill: # Skill: demo" in c.prompt for c in calls) == [False, True]
    assert all("## Rubric\n\nThe answer names the skill it used." in c.prompt for c in calls)


def test_failed_judgement_shows_the_reasoning(
    pytester: pytest.Pytester, judge: LoopbackServer
) -> None:
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - id: strict
            input: Anything
            expect:
              judge:
                rubric: An impossible standard.
                reference: The perfect answer.
    """,
    )
    result = run(pytester, "--no-skill-baseline")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  judge failed",
            f"    expected: the judge ({JUDGE}) passes it on: An impossible standard.",
            "    actual:   FAIL; the judge's reasoning:",
            "      The answer does not name the skill.",
        ]
    )
    (call,) = judge_calls(judge)
    assert "## Reference answer\n\nThe perfect answer." in call.prompt
    assert "Traceback" not in output(result)


def test_unparseable_verdict_fails_the_check_saying_so(
    pytester: pytest.Pytester, judge: LoopbackServer
) -> None:
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - id: mumbled
            input: Anything
            expect: {judge: "mumble"}
          - id: structured
            input: Anything else
            expect: {judge: "json please"}
    """,
    )
    result = run(pytester, "--no-skill-baseline", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*structured* PASSED*",
            "*actual:   the judge gave no verdict (its reply must end with 'VERDICT: PASS' or "
            "'VERDICT: FAIL'); it said:",
            "      Hard to say, really.",
        ]
    )


def test_without_a_judge_model_judge_only_items_skip(
    pytester: pytest.Pytester, judge: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=JUDGED_CASES)
    report = tmp_path / "report.json"
    result = run(pytester, "-rs", "--skill-report", str(report), judge_model=None)
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*every check of this case needs a judge model: name one with "
            "--skill-judge-model SPEC (or ini skill_judge_model)",
        ]
    )
    # Nothing was planned or asked: no progress line, no failed calls, an empty report.
    assert judge.calls == []
    assert "calls," not in output(result) and "call(s) failed" not in output(result)
    assert json.loads(report.read_text())["results"] == []


MIXED_CASES = """
    cases:
      - id: mixed
        input: Tell me about the topic
        expect:
          contains: demo
          judge: The answer names the skill it used.
"""


def test_without_a_judge_model_other_checks_decide_and_judges_are_not_graded(
    pytester: pytest.Pytester, judge: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=MIXED_CASES)
    report = tmp_path / "report.json"
    result = run(pytester, "--skill-report", str(report), "-W", "default", judge_model=None)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*demo.skill.yaml: 1 case(s) have judge checks that go ungraded (no judge model)*"]
    )
    results = json.loads(report.read_text())["results"]
    assert [(r["condition"], r["passed"]) for r in results] == [
        ("with_skill", True),
        ("baseline", False),
    ]
    assert results[0]["not_graded"] == ["judge: The answer names the skill it used."]
    assert judge_calls(judge) == []
    # With a judge the same case is graded by both checks.
    run(pytester, "--skill-report", str(report)).assert_outcomes(passed=1)
    assert "not_graded" not in json.loads(report.read_text())["results"][0]
    assert len(judge_calls(judge)) == 2


def test_without_any_model_judge_cases_skip(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path, cases_yaml=JUDGED_CASES)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_judge_calls_are_cached(pytester: pytest.Pytester, judge: LoopbackServer) -> None:
    write_skill(pytester.path, cases_yaml=JUDGED_CASES)
    cache = ("--skill-cache-dir", str(pytester.path / "cache"))
    run(pytester, *cache, cache="auto").assert_outcomes(passed=1)
    assert len(judge.calls) == 4 and len(judge_calls(judge)) == 2
    run(pytester, *cache, "--skill-cache-prune", cache="auto").assert_outcomes(passed=1)
    assert len(judge.calls) == 4  # the second run called neither the model nor the judge
    # ...and pruning left the gradings in place: they replay below.
    replayed = run(pytester, *cache, cache="replay")
    replayed.assert_outcomes(passed=1)
    assert len(judge.calls) == 4


def test_a_judge_replay_miss_is_an_error_naming_the_judge(
    pytester: pytest.Pytester, judge: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=JUDGED_CASES)
    cache = ("--skill-cache-dir", str(tmp_path / "cache"))
    # The answers are recorded, graded by another judge: this judge's gradings are not.
    run(pytester, *cache, judge_model="openai:other-judge", cache="auto").assert_outcomes(passed=1)
    assert judge_calls(judge) == []
    result = run(pytester, *cache, cache="replay")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"{HAIKU}: the judge {JUDGE} could not grade: not in the cache*",
        ]
    )
    result.stdout.fnmatch_lines([f"  {HAIKU}: 2 answer(s) not graded: the judge {JUDGE} could*"])
    assert judge_calls(judge) == []


def test_a_conftest_judge_replaces_the_built_in_one(
    pytester: pytest.Pytester, judge: LoopbackServer
) -> None:
    pytester.makeconftest(
        textwrap.dedent("""
        from pytest_skills.checks import CheckResult

        def pytest_skills_register_checks(registry):
            registry.register("judge", lambda rubric, answer: CheckResult(
                "judge", "topic" in answer, rubric, answer))
    """)
    )
    write_skill(pytester.path, cases_yaml=JUDGED_CASES)
    run(pytester, judge_model=None).assert_outcomes(passed=1)
    assert judge_calls(judge) == []


def test_the_fixture_can_ask_the_judge(
    pytester: pytest.Pytester, judge: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=JUDGED_CASES)
    pytester.makepyfile(
        test_app="""
        import pytest

        @pytest.mark.skill("demo")
        def test_graded(skill_model):
            answer = skill_model.ask("What is it?")
            skill_model.ask("What is it?", baseline=True)
            result = answer.check({"judge": "The answer names the skill."})
            assert result.passed, result.actual
    """
    )
    report = tmp_path / "report.json"
    result = run(pytester, "test_app.py", "--skill-report", str(report))
    result.assert_outcomes(passed=1)
    # The baseline was graded by the same judge check: it fails it.
    assert [(r["condition"], r["passed"]) for r in json.loads(report.read_text())["results"]] == [
        ("with_skill", True),
        ("baseline", False),
    ]
    assert len(judge_calls(judge)) == 2


def test_gradings_run_concurrently_before_the_items(
    pytester: pytest.Pytester, judge: LoopbackServer
) -> None:
    lock, in_flight, most = threading.Lock(), [0], [0]

    def slow_judge(call: Call) -> str:
        if call.model != "judge-model":
            return echo(call)
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.3)
        with lock:
            in_flight[0] -= 1
        return judge_responder(call)

    judge.responder = slow_judge
    write_skill(
        pytester.path,
        cases_yaml="cases:\n"
        + "".join(
            f"  - id: case-{i}\n    input: Question {i}\n    expect: {{judge: names the skill}}\n"
            for i in range(4)
        ),
    )
    result = run(pytester)
    result.assert_outcomes(passed=4)
    assert len(judge_calls(judge)) == 8
    # Graded in one concurrent round before the items ran, not one at a time in each item.
    assert most[0] > 1
