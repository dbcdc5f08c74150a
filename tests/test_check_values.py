"""Checks mean what they say (issue 19, findings 9 and 5): numbers are checked as the
text they were written as, one regex engine validates and matches, empty patterns and
huge numbers are collection errors with the line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.formats import load_suite
from pytest_skills.formats.loading import load_json, load_yaml
from tests.conftest import HAIKU, SKILL_MD
from tests.conftest import output as everything
from tests.loopback import LoopbackServer


@pytest.fixture
def registry() -> CheckRegistry:
    made = CheckRegistry()
    register_builtin_checks(made)
    return made


def skill_file(root: Path, name: str, content: str) -> Path:
    directory = root / "demo"
    directory.mkdir(exist_ok=True)
    (directory / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    target = directory / name
    target.write_text(content, encoding="utf-8")
    return target


def collect(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, "--skill-cache=off", "-p", "no:cacheprovider", *args
    )


# --- numbers are the text they were written as -----------------------------------------


@pytest.mark.parametrize(
    ("written", "text", "parsed_as"),
    [
        ("3.10", "3.10", "3.1"),
        ("010", "010", "8"),
        ("1:30", "1:30", "90"),
        ("1_000", "1_000", "1000"),
        ("0x1F", "0x1F", "31"),
        ("1.50", "1.50", "1.5"),
    ],
)
def test_a_yaml_number_is_checked_as_written(
    tmp_path: Path, registry: CheckRegistry, written: str, text: str, parsed_as: str
) -> None:
    path = skill_file(
        tmp_path,
        "demo.skill.yaml",
        f"cases:\n  - input: hi\n    expect: {{contains: {written}, not_contains: [{written}]}}\n",
    )
    check = load_suite(path, registry).cases[0].check
    assert check is not None
    contains, not_contains = check.value
    assert contains.value == (text,)
    assert not_contains.value == (text,)
    # The answer holds the parsed number only: the check reads the text, so it fails.
    assert not registry.evaluate(contains, f"the value is {parsed_as}!").passed
    assert registry.evaluate(contains, f"the value is {text}!").passed


def test_a_json_number_is_checked_as_written(tmp_path: Path, registry: CheckRegistry) -> None:
    path = skill_file(
        tmp_path,
        "skill_meta.json",
        '{"cases": [{"input": "hi", "expected": {"contains": [3.10, 2.50], "equals": 7.0}}]}',
    )
    check = load_suite(path, registry).cases[0].check
    assert check is not None
    contains, equals = check.value
    assert contains.value == ("3.10", "2.50")
    assert equals.value == "7.0"
    assert not registry.evaluate(contains, "Python 3.12 and 2.5").passed


def test_contains_3_10_fails_on_python_3_12_end_to_end(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    provider_env.responder = lambda call: "Use Python 3.12."
    skill_file(
        pytester.path,
        "demo.skill.yaml",
        "cases:\n  - {id: version, input: which python?, expect: {contains: 3.10}}\n",
    )
    result = collect(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*contains '3.10'*"])


def test_numbers_stay_numbers_where_numbers_are_meant(tmp_path: Path) -> None:
    data, _ = load_yaml("temperature: 0.70\nmax_tokens: 0x40\nseed: 010\n")
    assert data == {"temperature": 0.7, "max_tokens": 64, "seed": 8}
    assert json.dumps(data) == '{"temperature": 0.7, "max_tokens": 64, "seed": 8}'
    # Kept through pickling (xdist) with their text.
    again = pickle.loads(pickle.dumps(data))
    assert again == data and str(again["temperature"]) == "0.70"
    loaded, _ = load_json('{"t": 0.70, "n": 12}')
    assert loaded == {"t": 0.7, "n": 12} and str(loaded["t"]) == "0.70"


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            "{not_contains: no}",
            "not_contains: expected a string or a list of strings, not the "
            "boolean false; quote it to check for the text*",
        ),
        (
            "{contains: [a, yes]}",
            "contains: expected a string or a list of strings, not the boolean true*",
        ),
        ("{equals: 2024-01-01}", "equals: expected a string, not a date*"),
    ],
)
def test_what_yaml_reads_as_no_text_is_refused_with_the_line(
    pytester: pytest.Pytester, expect: str, message: str
) -> None:
    skill_file(pytester.path, "demo.skill.yaml", f"cases:\n  - input: hi\n    expect: {expect}\n")
    result = collect(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"{pytester.path}/demo/demo.skill.yaml:3: {message}"])


# --- empty and whitespace-only patterns ------------------------------------------------


@pytest.mark.parametrize(
    ("expect", "kind"),
    [
        ("{contains: ' '}", "contains"),
        ("{contains: [x, '   ']}", "contains"),
        ("{not_contains: ' '}", "not_contains"),
        ('{icontains: "\\t"}', "icontains"),
        ("{regex: ''}", "regex"),
        ("{regex: '  '}", "regex"),
        ("{starts_with: ' '}", "starts_with"),
        ("{any: [{contains: x}, {regex: ''}]}", "regex"),
    ],
)
def test_an_empty_or_blank_pattern_is_a_collection_error(
    pytester: pytest.Pytester, expect: str, kind: str
) -> None:
    skill_file(pytester.path, "demo.skill.yaml", f"cases:\n  - input: hi\n    expect: {expect}\n")
    result = collect(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"{pytester.path}/demo/demo.skill.yaml:3: {kind}: * empty or only whitespace*"]
    )
    assert "Traceback" not in everything(result)


def test_equals_an_empty_answer_is_still_allowed(registry: CheckRegistry) -> None:
    check = registry.parse({"equals": ""})
    assert registry.evaluate(check, "  \n").passed
    assert not registry.evaluate(check, "something").passed


# --- one regex engine ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        (r"^\p{Lu}\p{Ll}+$", "Hello", "hello"),  # re: "bad escape \p"
        (r"(?<word>ab)c", "xabc", "xab"),  # re before 3.12 has no (?<name>...)
        (r"(?V1)^[[a-z]--[aeiou]]+$", "xyz", "xyza"),  # nested sets
        (r"^(?:colour){e<=1}$", "color", "colours!"),  # fuzzy
        (r"^[[:digit:]]+$", "123", "12a"),  # a POSIX class, not the set '[:digt'
    ],
)
def test_the_regex_package_validates_what_it_matches(
    tmp_path: Path, registry: CheckRegistry, pattern: str, matching: str, not_matching: str
) -> None:
    path = skill_file(
        tmp_path,
        "skill_meta.json",
        json.dumps({"cases": [{"input": "hi", "expected": {"regex": pattern}}]}),
    )
    check = load_suite(path, registry).cases[0].check
    assert check is not None
    assert registry.evaluate(check, matching).passed
    assert not registry.evaluate(check, not_matching).passed


def test_the_docs_name_the_engine() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "checks.md").read_text()
    assert "the third-party\n[`regex`](https://pypi.org/project/regex/) package" in docs


# --- huge numbers ----------------------------------------------------------------------

HUGE = "9" * 400


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "demo.skill.yaml",
            f"cases:\n  - input: hi\n    seed: {HUGE}\n    expect: {{contains: x}}\n",
            "demo.skill.yaml:3: a number of 400 digits is larger than any value a skill test "
            "file can use",
        ),
        (
            "demo.skill.yaml",
            f"defaults:\n  temperature: {HUGE}\n"
            "cases:\n  - input: hi\n    expect: {contains: x}\n",
            "demo.skill.yaml:2: a number of 400 digits is larger than any value*",
        ),
        (
            "skill_meta.json",
            '{"cases": [\n {"input": "hi", "expected": {"contains": "x"},\n  "temperature": '
            f"{HUGE}}}]}}",
            "skill_meta.json:3: a number of 400 digits is larger than any value*",
        ),
        (
            "demo.skill.yaml",
            "cases:\n  - input: hi\n    seed: 18446744073709551616\n    expect: {contains: x}\n",
            "demo.skill.yaml:3: seed must fit in 64 bits (below 2**63)",
        ),
    ],
)
def test_a_huge_number_is_a_collection_error_with_its_line(
    pytester: pytest.Pytester, name: str, content: str, message: str
) -> None:
    skill_file(pytester.path, name, content)
    result = collect(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"{pytester.path}/demo/{message}"])
    assert "Traceback" not in everything(result)
