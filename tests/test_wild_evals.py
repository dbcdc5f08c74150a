"""Agent Skills evals as the second round of real files wrote them (docs/compatibility.md):
where cases live, which keys are criteria, where the skill is, what a context file is,
what a deterministic assertion looks like, and whose file a broken look-alike is.

Each test writes a small file of its own in the shape a rule covers; the real files are
run by tests/test_realworld.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic  # noqa: F401  (imported once, not in every in-process run)
import pytest

from pytest_skills.checks import Check
from pytest_skills.checks.judge import Rubric
from pytest_skills.formats import FormatError, load_suite, open_source
from pytest_skills.formats.criteria import FAILURE_RUBRIC
from pytest_skills.formats.foreign import ForeignFileError
from pytest_skills.formats.notices import line_of
from tests.conftest import output
from tests.test_compat import judging_registry, run, skill, write

pytestmark = pytest.mark.usefixtures("provider_env")


def evals(root: Path, data: object, *, skill_dir: Path | None = None) -> Path:
    skill(skill_dir or root)
    return write(root / "evals" / "evals.json", data)


def leaves(check: Check | None) -> list[Check]:
    """The check's leaves in order (an ``all`` opened up)."""
    assert check is not None
    return list(check.value) if check.kind == "all" else [check]


def kinds(check: Check | None) -> list[tuple[str, Any]]:
    return [
        (leaf.kind, leaf.value.rubric if isinstance(leaf.value, Rubric) else leaf.value)
        for leaf in leaves(check)
    ]


# --- where cases live --------------------------------------------------------------------


def test_cases_under_test_cases_with_expected_behavior(tmp_path: Path) -> None:
    data = {
        "skill_name": "demo",
        "version": "1.0.0",
        "test_cases": [
            {
                "id": "split",
                "name": "Parallel analysis",
                "prompt": "Analyse it in parallel",
                "expected_behavior": ["Splits the work in four", "Merges the results"],
                "difficulty": "medium",
            }
        ],
    }
    suite = load_suite(evals(tmp_path / "demo", data), judging_registry())
    (case,) = suite.cases
    assert case.id == "Parallel analysis"
    assert kinds(case.check) == [
        ("judge", "Splits the work in four"),
        ("judge", "Merges the results"),
    ]
    notes = "\n".join(suite.warnings)
    assert "'difficulty' (eval 1, line" in notes and "expected_behavior" not in notes


def test_a_near_miss_of_a_list_key_is_still_an_error(tmp_path: Path) -> None:
    path = evals(tmp_path / "demo", {"test_case": [{"id": 1, "prompt": "p", "assertions": ["a"]}]})
    with pytest.raises(FormatError, match="did you mean 'test_cases'"):
        open_source(path)


# --- which keys are criteria -------------------------------------------------------------


def test_expect_and_fail_lists(tmp_path: Path) -> None:
    data = [
        {
            "id": "mcp-first",
            "prompt": "Take over the lab domain",
            "expect": ["restates the rules of engagement", "contains 'kali_status'"],
            "fail": ["runs nmap before bootstrapping", "contains 'evil-winrm'"],
        }
    ]
    (case,) = load_suite(evals(tmp_path / "demo", data), judging_registry()).cases
    assert kinds(case.check) == [
        ("judge", "restates the rules of engagement"),
        ("contains", ("kali_status",)),
        ("judge", FAILURE_RUBRIC.format("runs nmap before bootstrapping")),
        ("not_contains", ("evil-winrm",)),
    ]


def test_checks_is_a_list_of_criteria_beside_expected_output(tmp_path: Path) -> None:
    data = {
        "evals": [
            {
                "id": 1,
                "name": "reuse",
                "prompt": "p",
                "expected_output": "ref",
                "checks": ["A", "B"],
            }
        ]
    }
    (case,) = load_suite(evals(tmp_path / "demo", data), judging_registry()).cases
    assert [leaf.value for leaf in leaves(case.check)] == [
        Rubric("A", "ref", "p"),
        Rubric("B", "ref", "p"),
    ]


def test_scorers_regex_and_llm_judge(tmp_path: Path) -> None:
    data = {
        "skill_name": "demo",
        "description": "Regression evals",
        "evals": [
            {
                "id": 0,
                "eval_name": "tidy-imports",
                "prompt": "Tidy the imports",
                "scorers": [
                    {"type": "regex", "name": "uses_tidy", "pattern": r"tidy\s+organise-imports"},
                    {"type": "llm_judge", "name": "keeps_alias", "criterion": "Keeps the alias"},
                ],
            }
        ],
    }
    suite = load_suite(evals(tmp_path / "demo", data), judging_registry())
    (case,) = suite.cases
    assert case.id == "tidy-imports"
    assert kinds(case.check) == [
        ("regex", leaves(case.check)[0].value),
        ("judge", "Keeps the alias"),
    ]
    assert leaves(case.check)[0].value.text == r"tidy\s+organise-imports"
    assert case.metadata["scorers"][0]["name"] == "uses_tidy"
    assert "scorers" not in "\n".join(suite.warnings)


def test_a_scorer_type_not_graded_here_warns_or_skips(tmp_path: Path) -> None:
    data = {
        "evals": [
            {
                "id": 1,
                "prompt": "p",
                "scorers": [{"type": "bleu", "name": "b"}, {"type": "regex", "pattern": "x"}],
            },
            {"id": 2, "prompt": "q", "scorers": [{"type": "bleu", "name": "b"}]},
        ]
    }
    suite = load_suite(evals(tmp_path / "demo", data), judging_registry())
    graded, ungraded = suite.cases
    assert kinds(graded.check) == [("regex", leaves(graded.check)[0].value)]
    assert graded.skip is None
    assert ungraded.check is None and ungraded.skip is not None and "'bleu'" in ungraded.skip
    notes = [w for w in suite.warnings if "'bleu'" in w]
    assert [w.split(":")[0] for w in notes] == ["eval 1 ('1')", "eval 2 ('2')"]
    assert all(line_of(w) for w in notes)


def test_a_regex_scorer_with_a_bad_pattern_is_an_error_at_its_line(tmp_path: Path) -> None:
    data = {"evals": [{"id": 1, "prompt": "p", "scorers": [{"type": "regex", "pattern": "("}]}]}
    with pytest.raises(FormatError, match="bad regular expression") as info:
        load_suite(evals(tmp_path / "demo", data), judging_registry())
    assert info.value.line == 9  # the pattern's line in the indented JSON


# --- deterministic assertions in plain words ---------------------------------------------


def test_plain_word_assertions_are_checks_and_prose_stays_a_rubric(tmp_path: Path) -> None:
    data = [
        {
            "id": "json-output",
            "prompt": "Summarise sales.csv as JSON",
            "expected_output": "A JSON object",
            "assertions": [
                "starts with '{'",
                "contains 'row_count' or contains 'rows'",
                "has at least 3 lines",
                "the output lists products by revenue",
            ],
        }
    ]
    (case,) = load_suite(evals(tmp_path / "demo", data), judging_registry()).cases
    assert [leaf.kind for leaf in leaves(case.check)] == [
        "starts_with",
        "any",
        "min_lines",
        "judge",
    ]


def test_string_match_objects_are_checks_when_their_text_is_a_phrase(tmp_path: Path) -> None:
    data = {
        "evals": [
            {
                "id": 0,
                "prompt": "Open a position",
                "assertions": [
                    {"id": "dry-run", "text": "contains '--dry-run'", "type": "string_match"},
                    {"id": "cmd", "text": "Uses twyne tx open-position", "type": "string_match"},
                    {"id": "sem", "text": "contains 'x'", "type": "semantic"},
                ],
            }
        ]
    }
    suite = load_suite(evals(tmp_path / "demo", data), judging_registry())
    (case,) = suite.cases
    assert kinds(case.check) == [
        ("contains", ("--dry-run",)),
        ("judge", "Uses twyne tx open-position"),
        ("judge", "contains 'x'"),  # its author asked a model
    ]
    assert not [w for w in suite.warnings if "kept as metadata" in w]


def test_plain_word_assertions_grade_without_a_judge(pytester: pytest.Pytester) -> None:
    """Deterministic items run with no judge model; a judge-only one skips; a mixed one
    is decided by its deterministic checks, and the warning names it at its line."""
    root = pytester.path / "demo"
    evals(
        root,
        [
            {"id": "echoes", "prompt": "Say hi", "assertions": ["contains 'echo'"]},
            {"id": "never", "prompt": "Say hi", "assertions": ["does not contain 'echo'"]},
            {"id": "prose", "prompt": "Say hi", "assertions": ["the answer is friendly"]},
            {"id": "mixed", "prompt": "Hi", "assertions": ["contains 'echo'", "it is kind"]},
        ],
    )
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    text = output(result)
    assert "--skill-judge-model" in text
    assert "evals.json:23: PytestWarning: " in text
    assert "1 case(s) have judge checks that go ungraded (no judge model): 'mixed';" in text


# --- where the skill is, what a context file is --------------------------------------------


def test_the_skill_in_a_folder_named_after_skill_name(tmp_path: Path) -> None:
    data = {
        "skill_name": "disk-cleanup",
        "evals": [{"id": 1, "prompt": "p", "expectations": ["a"]}],
    }
    path = write(tmp_path / "repo" / "evals" / "evals.json", data)
    skill(tmp_path / "repo" / "disk-cleanup")
    suite = load_suite(path, judging_registry())
    assert suite.skill.path == tmp_path / "repo" / "disk-cleanup" / "SKILL.md"


def test_no_skill_anywhere_names_every_place_looked(tmp_path: Path) -> None:
    data = {"skill_name": "tech-lead", "evals": [{"id": 1, "prompt": "p", "expectations": ["a"]}]}
    path = write(tmp_path / "repo" / "evals" / "evals.json", data)
    skill(tmp_path / "repo" / "skill", "tech-lead")
    with pytest.raises(FormatError, match=r"skills/tech-lead/SKILL.md.*tech-lead/SKILL.md"):
        load_suite(path, judging_registry())


def test_files_that_name_a_directory_give_every_file_in_it(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    write(root / "evals" / "fixtures" / "eval-1" / "log.md", "# log\n")
    write(root / "evals" / "fixtures" / "eval-1" / "notes" / "a.txt", "a\n")
    write(root / "evals" / "fixtures" / "eval-1" / ".hidden", "no\n")
    write(root / "evals" / "fixtures" / "empty" / ".keep", "")
    data = {
        "evals": [
            {"id": 1, "prompt": "p", "files": ["evals/fixtures/eval-1"], "expectations": ["a"]}
        ]
    }
    (case,) = load_suite(evals(root, data), judging_registry()).cases
    assert case.context_files == (
        ("evals/fixtures/eval-1/log.md", "# log\n"),
        ("evals/fixtures/eval-1/notes/a.txt", "a\n"),
    )
    data["evals"][0]["files"] = ["evals/fixtures/empty"]  # type: ignore[index]
    with pytest.raises(FormatError, match="the directory evals/fixtures/empty holds no files"):
        load_suite(evals(root, data), judging_registry())


# --- warnings carry the line and name the case ---------------------------------------------


def test_warnings_show_at_their_line_and_name_the_eval(pytester: pytest.Pytester) -> None:
    root = pytester.path / "demo"
    write(root / "evals" / "fixtures" / "x.txt", "fixture\n")
    evals(
        root,
        {
            "evals": [
                {"id": 1, "prompt": "p", "expectations": ["a"]},
                {
                    "id": 2,
                    "name": "second",
                    "prompt": "q",
                    "expected_output": "r",
                    "files": ["repo/evals/fixtures/x.txt"],
                    "tags": ["t"],
                },
            ]
        },
    )
    result = run(pytester, "--collect-only", "-q")
    text = output(result)
    assert (
        "evals.json:16: PytestWarning: eval 2 ('second'): file 'repo/evals/fixtures/x.txt' "
        "is not where it says; read evals/fixtures/x.txt instead" in text
    )
    assert "'tags' (eval 2, line 18)" in text
    assert "evals.json:0" not in text


# --- whose file a broken look-alike is -----------------------------------------------------

MANIFEST = """\
schema_version: 1
id: repository-analysis
capabilities:
  - read-only
compatibility:
  agents:
    - agent: claude
      evidence: Measured on Claude Code: it works.
"""


def test_another_tools_broken_manifest_is_a_warning(pytester: pytest.Pytester) -> None:
    skill(pytester.path / "tool")
    write(pytester.path / "tool" / "tool.skill.yaml", MANIFEST)
    pytester.makepyfile(test_app="def test_app():\n    pass\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
    text = output(result)
    assert "tool.skill.yaml:8: PytestWarning: not collected: invalid YAML" in text
    assert "skills: not collected, no test cases in: tool/tool.skill.yaml" in text
    with pytest.raises(ForeignFileError):
        open_source(pytester.path / "tool" / "tool.skill.yaml")


@pytest.mark.parametrize(
    "shown",
    ["cases:\n  - input: hi\n", "case:\n  - x\n", '{"tests": [{"input": "x"}]}'],
    ids=["cases", "near-miss", "json-tests"],
)
def test_a_broken_file_that_shows_cases_is_still_an_error(tmp_path: Path, shown: str) -> None:
    name = "skill_meta.json" if shown.startswith("{") else "x.skill.yaml"
    broken = shown[:-2] + ",,]" if shown.startswith("{") else shown + MANIFEST
    path = write(tmp_path / "x" / name, broken)
    with pytest.raises(FormatError) as info:
        open_source(path)
    assert not isinstance(info.value, ForeignFileError)


def test_a_valid_look_alike_without_cases_is_not_collected(tmp_path: Path) -> None:
    path = write(tmp_path / "x" / "x.skill.yaml", MANIFEST.replace(": it works", " it works"))
    assert open_source(path) is None
