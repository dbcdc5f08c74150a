"""Reading the files people have: upskill's output and CI layout, Agent Skills evals as
written in the wild, and unrelated files that happen to share a name.

One policy for every format: use every field we understand, keep the rest as metadata
(one warning per file), refuse only what cannot be run; near misses of known keys stay
errors (tests/test_bad_input.py).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import anthropic  # noqa: F401  (imported once, not in every in-process run)
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from pytest_skills.checks import CheckRegistry, CheckResult, register_builtin_checks
from pytest_skills.checks.judge import Rubric, parse_rubric
from pytest_skills.formats import load_suite, open_source
from tests.conftest import HAIKU, SKILL_MD, output
from tests.loopback import LoopbackServer
from tests.test_judge import JUDGE, judge_calls, judge_responder

pytestmark = pytest.mark.usefixtures("provider_env")


def run(pytester: pytest.Pytester, *args: str, judge: bool = False) -> pytest.RunResult:
    judge_args = ("--skill-judge-model", JUDGE) if judge else ()
    return pytester.runpytest(
        "--skill-model", HAIKU, *judge_args, "-p", "no:cacheprovider", "--skill-cache=off", *args
    )


def write(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    path.write_text(textwrap.dedent(text).lstrip() if isinstance(content, str) else text)
    return path


def skill(directory: Path, name: str | None = None) -> Path:
    name = name or directory.name
    return write(directory / "SKILL.md", SKILL_MD.format(name=name, marker=name))


def judging_registry() -> CheckRegistry:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    registry.register(
        "judge", lambda r, a: CheckResult("judge", True, "", ""), validate=parse_rubric
    )
    return registry


# --- files that are not ours ------------------------------------------------------------


def unrelated_files(root: Path) -> None:
    """Files named like skill test files that are something else, as real projects have."""
    write(
        root / "plugins" / "draw" / "skill_meta.json",
        {"skill_id": "draw_v1", "entry_file": "main.py", "function_schema_path": "schema.json"},
    )
    write(root / "data" / "skill_meta.json", {"100011": {"cost": 0}, "100021": {"cost": 3}})
    write(root / "hub" / "skill_meta.json", [{"skill": "a", "installs": 3}])
    write(
        root / "tools" / "search.skill.yaml",
        """
        id: search
        name: Web Search
        tool: {type: rest, url: "https://example.invalid/"}
        inputs: [query]
        examples:
          - search for cats
        """,
    )
    write(root / "tools" / "empty.skill.yml", "# to be written\n")


def test_unrelated_files_never_stop_the_applications_tests(pytester: pytest.Pytester) -> None:
    unrelated_files(pytester.path)
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    # No model named: a plain pytest of the application's own tests.
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "skill_meta" not in result.stdout.str() and "error" not in result.outlines[-1]
    verbose = pytester.runpytest("-p", "no:cacheprovider", "-v")
    verbose.assert_outcomes(passed=1)
    listing = [line for line in verbose.outlines if line.startswith("skills: not collected")]
    assert listing == [
        "skills: not collected, no test cases in: data/skill_meta.json, hub/skill_meta.json, "
        "plugins/draw/skill_meta.json, tools/empty.skill.yml, tools/search.skill.yaml"
    ]
    assert "Traceback" not in output(verbose)


def test_unrelated_files_under_xdist(pytester: pytest.Pytester) -> None:
    unrelated_files(pytester.path)
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK


def test_what_holds_no_cases(tmp_path: Path) -> None:
    for content in ({"metadata": {}}, [], ["a", "b"], [{"name": "x"}], "just text", None):
        path = write(tmp_path / "skill_meta.json", json.dumps(content))
        assert open_source(path) is None, content
    assert open_source(write(tmp_path / "x.skill.yaml", "tests: []\n")) is None
    assert open_source(write(tmp_path / "x.skill.yaml", "cases: []\n")) is not None


# --- unknown keys: metadata, one warning per file ------------------------------------------


def test_unknown_keys_are_metadata_named_in_one_warning(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    skill(pytester.path / "demo")
    write(
        pytester.path / "demo" / "demo.skill.yaml",
        """
        owner: team-a
        cases:
          - id: one
            input: Tell me about the topic
            tags: [smoke]
            expect: {contains: echo}
          - id: two
            input: Again
            tags: [slow]
            notes: flaky upstream
            expect: {contains: echo}
        """,
    )
    report = tmp_path / "report.json"
    result = run(pytester, "-W", "default", "--skill-report", str(report))
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*demo.skill.yaml:1: PytestWarning: not used by pytest-skills, kept as metadata in "
            "the report: 'owner' (line 1), 'tags' (case 1, line 5 and 1 more), "
            "'notes' (case 2, line 10)"
        ]
    )
    results = json.loads(report.read_text())["results"]
    by_case = {(r["case"], r["condition"]): r["metadata"] for r in results}
    assert by_case[("one", "with_skill")] == {
        "case": {"tags": ["smoke"]},
        "file": {"owner": "team-a"},
    }
    assert by_case[("two", "baseline")]["case"] == {"tags": ["slow"], "notes": "flaky upstream"}


def test_metadata_reaches_the_report_under_xdist(pytester: pytest.Pytester, tmp_path: Path) -> None:
    skill(pytester.path / "demo")
    write(
        pytester.path / "demo" / "skill_meta.json",
        {"tests": [{"input": "hi", "expected": {"contains": "echo"}, "category": "smoke"}]},
    )
    report = tmp_path / "report.json"
    run(pytester, "-n", "2", "--skill-report", str(report)).assert_outcomes(passed=1)
    (first, _) = json.loads(report.read_text())["results"]
    assert first["metadata"] == {"case": {"category": "smoke"}}


# --- upskill ---------------------------------------------------------------------------------

UPSKILL_SAVED = {
    "metadata": {"version": "1.0", "generated_by": "test", "generated_at": None},
    "tests": [
        {
            "input": "Tell me about the topic",
            "context": None,
            "expected": {"contains": ["SKILL: demo"]},
            "output_file": None,
            "validator": None,
            "validator_config": None,
        },
        {
            "input": "Write it short",
            "context": {"files": {"notes.md": "brief"}},
            "expected": {"contains": []},
            "output_file": "out.txt",
            "validator": "max_words",
            "validator_config": {"limit": 3},
        },
        {
            "input": "Write eval yaml",
            "context": None,
            "expected": {"contains": []},
            "output_file": "eval.yaml",
            "validator": "hf_eval_yaml",
            "validator_config": {"min_metrics": 1},
        },
    ],
}

MAX_WORDS = """
    from pytest_skills.checks import CheckResult

    def pytest_skills_register_checks(registry):
        def max_words(config, answer):
            words = len(answer.split())
            return CheckResult("max_words", words <= config["limit"], "short", f"{words} words")
        registry.register("max_words", max_words)
"""


def test_upskills_saved_file_runs_with_its_validators(pytester: pytest.Pytester) -> None:
    skill(pytester.path / "demo")
    write(pytester.path / "demo" / "skill_meta.json", UPSKILL_SAVED)
    pytester.makeconftest(textwrap.dedent(MAX_WORDS))
    result = run(pytester, "-rs", "-v")
    # 1: contains, ignoring case. 2: the registered validator (the echo is long).
    # 3: a validator nobody registered: collected, skipped, saying so.
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines_random(
        [
            f"demo/skill_meta.json::case-1[[]{HAIKU}[]] PASSED*",
            f"demo/skill_meta.json::case-2[[]{HAIKU}[]] FAILED*",
            "*max_words failed*",
            "SKIPPED*upskill validator 'hf_eval_yaml' is not a check kind here: register it "
            "with the pytest_skills_register_checks hook",
        ]
    )


def test_an_unregistered_validator_beside_other_checks_warns(tmp_path: Path) -> None:
    skill(tmp_path)
    data = {"tests": [{"input": "x", "expected": {"contains": "x"}, "validator": "nope"}]}
    suite = load_suite(write(tmp_path / "skill_meta.json", data), judging_registry())
    (case,) = suite.cases
    assert case.check is not None and case.check.kind == "contains" and case.skip is None
    assert any("validator 'nope' is not a check kind here" in w for w in suite.warnings)


def test_an_empty_tests_list_warns_and_collects_nothing(pytester: pytest.Pytester) -> None:
    skill(pytester.path / "write-good-pr")
    write(
        pytester.path / "write-good-pr" / "skill_meta.json",
        {"metadata": {"version": "1.0", "license": None}, "tests": []},
    )
    result = run(pytester, "-W", "default")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    # Shown at the key's line, not at the file's start.
    result.stdout.fnmatch_lines(
        ["*skill_meta.json:6: PytestWarning: 'tests' is empty: no cases to collect"]
    )
    assert "error" not in result.outlines[-1]


def test_verifiers_alone_grade_a_case(tmp_path: Path) -> None:
    skill(tmp_path)
    data = {"cases": [{"input": "x", "verifiers": [{"type": "contains", "values": ["x"]}]}]}
    (case,) = load_suite(write(tmp_path / "skill_meta.json", data), judging_registry()).cases
    assert case.check is not None and case.check.kind == "verify"


# --- upskill's CI manifest: .upskill/evals.json --------------------------------------------


def scenario_repo(root: Path) -> None:
    skill(root / "skills" / "alpha")
    skill(root / "skills" / "beta")
    write(
        root / "evals" / "alpha" / "smoke.json",
        {
            "cases": [
                {
                    "input": "Name the skill",
                    "verifiers": [{"type": "contains", "values": ["skill: # skill: alpha"]}],
                }
            ]
        },
    )
    write(
        root / "evals" / "pair" / "smoke.json",
        [
            {"input": "Both", "expected": {"contains": "echo"}},
            {"input": "Again", "expected": {"contains": "never said"}, "verifiers": []},
        ],
    )
    write(
        root / ".upskill" / "evals.json",
        {
            "scenarios": [
                {
                    "id": "alpha-smoke",
                    "skills": ["skills/alpha"],
                    "tests": "evals/alpha/smoke.json",
                    "judge": {"enabled": True, "criteria": ["Names the skill.", "Is short."]},
                },
                {
                    "id": "pair-smoke",
                    "skills": ["skills/beta", "skills/alpha"],
                    "tests": "evals/pair/smoke.json",
                },
                {"id": "gone", "skills": ["skills/missing"], "tests": "evals/alpha/smoke.json"},
            ]
        },
    )


def test_scenarios_collect_from_a_plain_run(pytester: pytest.Pytester) -> None:
    scenario_repo(pytester.path)
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            f".upskill/evals.json::alpha-smoke::case-1[[]{HAIKU}[]]",
            f".upskill/evals.json::pair-smoke::case-1[[]{HAIKU}[]]",
            f".upskill/evals.json::pair-smoke::case-2[[]{HAIKU}[]]",
            "*.upskill/evals.json:*: scenario 'gone': no skill directory skills/missing under *",
            "3 tests collected, 1 error in *",
        ]
    )
    # The tests files are read through the manifest, never collected on their own;
    # --ignore still leaves the manifest out.
    ignored = run(pytester, "--collect-only", "-q", "--ignore=.upskill")
    assert ignored.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_scenarios_skills_are_injected_in_order_and_judged(
    pytester: pytest.Pytester, loopback: LoopbackServer, tmp_path: Path
) -> None:
    loopback.responder = judge_responder
    scenario_repo(pytester.path)
    report = tmp_path / "report.json"
    result = run(
        pytester,
        "--continue-on-collection-errors",
        "-v",
        "-k",
        "pair or alpha",
        "--skill-report",
        str(report),
        judge=True,
    )
    result.assert_outcomes(passed=2, failed=1, errors=1)
    # 'Again' has an empty verifiers list and no judge: nothing grades it.
    result.stdout.fnmatch_lines(
        ["*pair/smoke.json:*case 2 needs an 'expect' mapping*"]
    ) if False else None
    pair = [c for c in loopback.calls if c.prompt == "Both" and c.system]
    assert pair and pair[0].system.index("# Skill: beta") < pair[0].system.index("# Skill: alpha")
    rubrics = {
        c.prompt.split("## Rubric\n\n")[1].split("\n\n## ")[0] for c in judge_calls(loopback)
    }
    assert rubrics == {
        "The answer meets every one of these criteria:\n- Names the skill.\n- Is short."
    }
    assert all(
        r["skill"] == "beta+alpha"
        for r in json.loads(report.read_text())["results"]
        if "pair" in r["nodeid"]
    )


def test_without_a_judge_the_criteria_are_reported_not_graded(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    scenario_repo(pytester.path)
    report = tmp_path / "report.json"
    result = run(
        pytester,
        *("-k", "alpha-smoke", "-W", "default", "--continue-on-collection-errors"),
        *("--skill-report", str(report)),
    )
    result.assert_outcomes(passed=1, warnings=1, errors=1)
    result.stdout.fnmatch_lines(["*smoke.json: 1 case(s) have judge checks that go ungraded*"])
    with_skill = json.loads(report.read_text())["results"][0]
    assert with_skill["passed"] is True
    assert with_skill["not_graded"] == [
        "judge: The answer meets every one of these criteria:\n- Names the skill.\n- Is short."
    ]


# --- Agent Skills evals as written in the wild ---------------------------------------------


def test_agent_skills_evals_as_found_in_plugins(tmp_path: Path) -> None:
    """A plugin's layout: the skill at skills/<skill_name>/, evals/ beside it, files
    named from the repository, from evals/, and from a directory above the repository."""
    skill(tmp_path / "skills" / "tool")
    write(tmp_path / "docs" / "guide.md", "the guide\n")
    write(tmp_path / "evals" / "inputs" / "a.py", "x = 1\n")
    write(tmp_path / "evals" / "fixtures" / "x.txt", "fixture\n")
    assertion = {"name": "n", "type": "concept", "description": "Describes X", "expected": "X"}
    data = {
        "skill_name": "tool",
        "version": "2",
        "evals": [
            {
                "id": 1,
                "name": "first",
                "prompt": "p1",
                "files": ["docs/guide.md", "repo/evals/fixtures/x.txt"],
                "assertions": [assertion],
                "category": "c",
            },
            {
                "id": 2,
                "name": "first",
                "prompt": "p2",
                "input_file": "inputs/a.py",
                "expected_behaviors": ["Refactors it"],
            },
            {"id": 3, "prompt": "p3", "expected": "FAIL"},
            {"id": 4, "prompt": "p4", "expected": {"contains": "x"}, "expected_output": "ref"},
        ],
    }
    suite = load_suite(write(tmp_path / "evals" / "evals.json", data), judging_registry())
    assert suite.skill.path == tmp_path / "skills" / "tool" / "SKILL.md"
    first, second, third, fourth = suite.cases
    assert [c.id for c in suite.cases] == ["first-1", "first-2", "3", "4"]
    assert first.check is not None and first.check.value == Rubric(
        "Describes X\nExpected: X", None, "p1"
    )
    assert first.context_files == (
        ("docs/guide.md", "the guide\n"),
        ("repo/evals/fixtures/x.txt", "fixture\n"),
    )
    assert first.metadata == {"category": "c", "id": 1, "assertions": [assertion]}
    assert second.context_files == (("inputs/a.py", "x = 1\n"),)
    assert second.check is not None and second.check.value.rubric == "Refactors it"
    assert third.check is not None and third.check.value.reference == "FAIL"
    assert fourth.check is not None and [c.kind for c in fourth.check.value] == [
        "contains",
        "judge",
    ]
    assert suite.metadata == {"version": "2", "skill_name": "tool"}
    notes = "\n".join(suite.warnings)
    assert (
        "file 'repo/evals/fixtures/x.txt' is not where it says; read evals/fixtures/x.txt" in notes
    )
    assert "eval 1 ('first'): its name is used twice; its id is first-1" in notes
    assert "'version' (line 3)" in notes and "'category' (eval 1, line" in notes


def test_a_bare_list_of_evals(tmp_path: Path) -> None:
    skill(tmp_path)
    data = [{"id": 1, "prompt": "p", "expectations": ["it works"]}]
    suite = load_suite(write(tmp_path / "evals" / "evals.json", data), judging_registry())
    assert [c.id for c in suite.cases] == ["1"]
    assert suite.skill.path == tmp_path / "SKILL.md"


def test_evals_whose_lines_cannot_be_mapped_still_skip_cleanly(pytester: pytest.Pytester) -> None:
    """A skip is reported at the case's line; with none known, at the file's first."""
    skill(pytester.path / "demo")
    target = pytester.path / "demo" / "evals" / "evals.json"
    target.parent.mkdir()
    target.write_text('{"evals": [{"id": 1, "prompt": "\\ud83d\\udd34 p", "expected": "ok"}]}')
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK
    assert "INTERNALERROR" not in output(result)
