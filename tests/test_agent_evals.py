"""The Agent Skills eval format: evals/evals.json inside a skill directory."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic  # noqa: F401  (imported once, not in every in-process run)
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from pytest_skills.checks import CheckRegistry, CheckResult, register_builtin_checks
from pytest_skills.checks.judge import Rubric, parse_rubric
from pytest_skills.formats import FormatError, load_suite
from tests.conftest import HAIKU, SKILL_MD
from tests.loopback import LoopbackServer
from tests.test_judge import JUDGE, judge_calls, judge_responder

pytestmark = pytest.mark.usefixtures("provider_env")

EVALS = {
    "skill_name": "demo",
    "evals": [
        {
            "id": 1,
            "prompt": "Summarise the data file",
            "expected_output": "A summary naming demo",
            "files": ["evals/files/data.txt"],
            "assertions": ["The answer names the skill", "The answer is short"],
        },
        {"id": "strict", "prompt": "Be perfect", "assertions": ["An impossible standard"]},
        {"id": "reference-only", "prompt": "Name it", "expected_output": "It names demo"},
    ],
}


def write_evals(root: Path, data: object, *, name: str = "demo", skill: bool = True) -> Path:
    directory = root / name
    (directory / "evals" / "files").mkdir(parents=True, exist_ok=True)
    if skill:
        (directory / "SKILL.md").write_text(SKILL_MD.format(name=name, marker=name))
    (directory / "evals" / "files" / "data.txt").write_text("rows: 3\n")
    target = directory / "evals" / "evals.json"
    target.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return target


def run(pytester: pytest.Pytester, *args: str, model: bool = True) -> pytest.RunResult:
    models = ("--skill-model", HAIKU, "--skill-judge-model", JUDGE) if model else ()
    return pytester.runpytest(*models, "-p", "no:cacheprovider", "--skill-cache=off", *args)


@pytest.fixture
def judge(loopback: LoopbackServer) -> LoopbackServer:
    loopback.responder = judge_responder
    return loopback


# --- parsing -------------------------------------------------------------------------------


def test_load_evals_as_cases(tmp_path: Path) -> None:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    registry.register(
        "judge", lambda rubric, answer: CheckResult("judge", True, "", ""), validate=parse_rubric
    )
    suite = load_suite(write_evals(tmp_path, EVALS), registry)

    assert suite.format == "agentskills"
    assert suite.skill.path == tmp_path / "demo" / "SKILL.md"
    assert [case.id for case in suite.cases] == ["1", "strict", "reference-only"]
    first, strict, reference = suite.cases
    assert first.context_files == (("evals/files/data.txt", "rows: 3\n"),)
    assert first.prompt == (
        "Summarise the data file\n\nFile `evals/files/data.txt`:\n```\nrows: 3\n```"
    )
    assert first.line == 4
    # Every assertion is a judge check; all must pass; expected_output is the reference.
    assert first.check.kind == "all"
    assert [c.value for c in first.check.value] == [
        Rubric("The answer names the skill", "A summary naming demo", "Summarise the data file"),
        Rubric("The answer is short", "A summary naming demo", "Summarise the data file"),
    ]
    assert strict.check.kind == "judge" and strict.check.value.reference is None
    # Without assertions the judge compares the answer with expected_output.
    assert reference.check.kind == "judge"
    assert reference.check.value.reference == "It names demo"
    assert "reference" in reference.check.value.rubric


def test_skill_creator_expectations_are_assertions(tmp_path: Path) -> None:
    registry = CheckRegistry()
    registry.register(
        "judge", lambda rubric, answer: CheckResult("judge", True, "", ""), validate=parse_rubric
    )
    data = {"evals": [{"id": 1, "prompt": "p", "expectations": ["it works"]}]}
    (case,) = load_suite(write_evals(tmp_path, data), registry).cases
    assert case.check.value == Rubric("it works", None, "p")


# --- running -------------------------------------------------------------------------------


def test_evals_are_collected_only_under_evals_dirs(pytester: pytest.Pytester) -> None:
    write_evals(pytester.path, EVALS)
    (pytester.path / "demo" / "evals.json").write_text("not even json")
    (pytester.path / "other").mkdir()
    (pytester.path / "other" / "evals.json").write_text("{}")
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            f"demo/evals/evals.json::1[[]{HAIKU}[]]",
            f"demo/evals/evals.json::strict[[]{HAIKU}[]]",
            f"demo/evals/evals.json::reference-only[[]{HAIKU}[]]",
        ]
    )
    assert "3 tests collected" in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK


def test_files_are_context_and_assertions_are_judged(
    pytester: pytest.Pytester, judge: LoopbackServer
) -> None:
    write_evals(pytester.path, EVALS)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            f"demo/evals/evals.json::1[[]{HAIKU}[]] PASSED*",
            f"demo/evals/evals.json::reference-only[[]{HAIKU}[]] PASSED*",
            f"demo/evals/evals.json::strict[[]{HAIKU}[]] FAILED*",
            f"    expected: the judge ({JUDGE}) passes it on: An impossible standard",
        ]
    )
    model_calls = [c for c in judge.calls if c.model == "claude-haiku-4-5"]
    assert "Summarise the data file\n\nFile `evals/files/data.txt`:\n```\nrows: 3\n```" in {
        c.prompt for c in model_calls
    }
    graded = judge_calls(judge)
    # Two assertions + one + the reference rubric, for both conditions.
    assert len(graded) == 8
    first = [c for c in graded if "## Task\n\nSummarise the data file" in c.prompt]
    assert len(first) == 4
    assert all("## Reference answer\n\nA summary naming demo" in c.prompt for c in first)
    assert {c.prompt.split("## Rubric\n\n")[1].split("\n")[0] for c in first} == {
        "The answer names the skill",
        "The answer is short",
    }
    # The judge fails every baseline answer (it does not name the skill): lift 2 of 3.
    result.stdout.re_match_lines([r"anthropic:claude-haiku-4-5\s+3\s+2/3\s+67%\s+0/3\s+0%"])


def test_without_models_evals_skip_and_pytest_stays_green(pytester: pytest.Pytester) -> None:
    write_evals(pytester.path, EVALS)
    result = run(pytester, model=False)
    result.assert_outcomes(skipped=3)
    assert result.ret == pytest.ExitCode.OK


def test_skill_name_mismatch_is_a_warning(pytester: pytest.Pytester) -> None:
    write_evals(pytester.path, {**EVALS, "skill_name": "other"})
    result = run(pytester, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*evals.json names the skill 'other', its SKILL.md 'demo'*"])


# --- bad files -------------------------------------------------------------------------------

GOOD = {"id": 1, "prompt": "p", "assertions": ["a"]}

BAD = [
    pytest.param(
        '{\n  "evals": [\n    {"id": 1,}\n  ]\n}',
        "evals.json:3: invalid JSON: *",
        id="invalid-json",
    ),
    pytest.param(
        {"eval": [GOOD]},
        "evals.json:2: unknown key 'eval' in the top level; did you mean 'evals'?",
        id="near-miss-top-key",
    ),
    pytest.param(
        {"evals": [GOOD, {"id": 2, "prompt": "p", "assertion": ["a"]}]},
        "evals.json:13: unknown key 'assertion' in eval 2; did you mean 'assertions'?",
        id="unknown-eval-key",
    ),
    pytest.param(
        {"evals": [{"id": 1, "prompt": "p", "assertions": [{"descripton": "x"}]}]},
        "evals.json:8: unknown key 'descripton' in 'assertions' entry 1; "
        "did you mean 'description'?",
        id="near-miss-in-an-assertion",
    ),
    pytest.param(
        {"evals": [GOOD, {"id": 2, "assertions": ["a"]}]},
        "evals.json:10: eval 2 needs a non-empty 'prompt' string",
        id="no-prompt",
    ),
    pytest.param(
        {
            "evals": [
                {"id": 1, "prompt": "p", "files": ["evals/files/missing.txt"], "assertions": ["a"]}
            ]
        },
        "evals.json:7: no file evals/files/missing.txt in the skill directory *",
        id="missing-file",
    ),
    pytest.param(
        {"evals": [{"id": 1, "prompt": "p", "files": ["../../etc/passwd"], "assertions": ["a"]}]},
        "evals.json:7: file '../../etc/passwd' must be a relative path inside *",
        id="escaping-file",
    ),
    pytest.param(
        {"evals": [{"id": 1, "prompt": "p"}]},
        "evals.json:3: eval 1 has no 'assertions', no 'expected_output' and no 'expected': "
        "nothing to grade",
        id="nothing-to-grade",
    ),
    pytest.param(
        {"evals": [{"id": 1, "prompt": "p", "assertions": ["ok", 3]}]},
        "evals.json:8: 'assertions' entry 2 must be a non-empty string or an object",
        id="bad-assertion",
    ),
    pytest.param(
        {"evals": [GOOD, GOOD]},
        "evals.json:11: eval id '1' is used twice (evals 1 and 2)",
        id="duplicate-id",
    ),
    pytest.param(
        {"evals": [{"id": True, "prompt": "p", "assertions": ["a"]}]},
        "evals.json:4: 'id' must be a number or a non-empty string",
        id="bool-id",
    ),
]


@pytest.mark.parametrize(("content", "expected"), BAD)
def test_bad_evals_files_are_collection_errors(
    pytester: pytest.Pytester, content: object, expected: str
) -> None:
    write_evals(pytester.path, content)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*/demo/evals/{expected}"])
    assert "Traceback" not in result.stdout.str()


def test_missing_skill_md_is_a_collection_error(tmp_path: Path) -> None:
    path = write_evals(tmp_path, {"evals": [GOOD]}, skill=False)
    with pytest.raises(
        FormatError,
        match=r"no SKILL.md in the skill directory .*/demo "
        r"\(the parent of evals/\)",
    ):
        load_suite(path, CheckRegistry())
