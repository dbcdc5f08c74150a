"""skill-eval's plain-words assertions: parsed only when the whole sentence is a phrase,
graded by the built-in kinds with skill-eval's meaning."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.checks.phrases import MAX_PHRASE_CHARS, negated, parse_phrase


@pytest.fixture
def registry() -> CheckRegistry:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    return registry


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("contains '100'", {"contains": "100"}),
        ('contains "Grade: A"', {"contains": "Grade: A"}),
        ("Contains 'x'", {"contains": "x"}),
        ("does not contain 'FAILED'", {"not_contains": "FAILED"}),
        (
            "contains 'CRITICAL' or contains 'critical'",
            {"any": [{"contains": "CRITICAL"}, {"contains": "critical"}]},
        ),
        (
            "contains '100' or contains 'Grade: A' or contains 'Grade A'",
            {"any": [{"contains": "100"}, {"contains": "Grade: A"}, {"contains": "Grade A"}]},
        ),
        ("starts with '{'", {"starts_with": "{"}),
        ("ends with '}'", {"ends_with": "}"}),
        ("starts with 'Dear'", {"regex": r"(?i)\A\s*Dear"}),
        ("ends with 'Done.'", {"regex": r"(?i)Done\.\s*\Z"}),
        ('matches regex /"row_count"\\s*:\\s*20/', {"regex": '"row_count"\\s*:\\s*20'}),
        ("matches pattern /a/b/", {"regex": "a/b"}),
        ("has at least 3 lines", {"min_lines": 3}),
        ("has at least 1 line", {"min_lines": 1}),
        ("is valid JSON", {"json": True}),
        ("output is valid json", {"json": True}),
        # A literal holds its quote, or ' or ', when the rest would not parse otherwise.
        ("contains 'it's'", {"contains": "it's"}),
        ("contains 'this or that'", {"contains": "this or that"}),
        ("contains 'a' or matches regex /b|c/", {"any": [{"contains": "a"}, {"regex": "b|c"}]}),
    ],
)
def test_phrases_parse(text: str, expect: dict[str, Any]) -> None:
    assert parse_phrase(text) == expect


@pytest.mark.parametrize(
    "text",
    [
        "the output lists products in descending order by total revenue",
        "contains a summary of the data",  # unquoted: prose for a judge
        "contains ''",
        "contains 'a' or the output is short",
        "contains 'a' and contains 'b'",
        "has at least 0 lines",
        "has at least three lines",
        "matches regex //",
        "Mentions --dry-run",
        "",
    ],
)
def test_prose_stays_prose(text: str) -> None:
    assert parse_phrase(text) is None


def test_long_or_hostile_text_is_prose_and_quick() -> None:
    assert parse_phrase("contains '" + "x" * MAX_PHRASE_CHARS + "'") is None
    hostile = ("contains 'a' or " * 60 + "contains '" + "' '" * 90)[:MAX_PHRASE_CHARS]
    started = time.monotonic()
    parse_phrase(hostile)
    parse_phrase("contains '" + "'" * (MAX_PHRASE_CHARS - 20))
    assert time.monotonic() - started < 5  # a guard against a blow-up, not a measurement


@pytest.mark.parametrize(
    ("expect", "opposite"),
    [
        ({"contains": "x"}, {"not_contains": "x"}),
        ({"not_contains": "x"}, {"contains": "x"}),
        ({"any": [{"contains": "a"}, {"contains": "b"}]}, {"not_contains": ["a", "b"]}),
        ({"regex": "x"}, None),
        ({"any": [{"contains": "a"}, {"regex": "b"}]}, None),
    ],
)
def test_negation_only_where_one_kind_says_it(
    expect: dict[str, Any], opposite: dict[str, Any] | None
) -> None:
    assert negated(expect) == opposite


@pytest.mark.parametrize(
    ("text", "answer", "passed"),
    [
        ("contains 'critical'", "Found 2 CRITICAL issues", True),
        ("does not contain 'grade: a'", "Overall: Grade: A", False),
        ("contains 'SEC-004' or contains 'curl'", "pipes CURL into sh", True),
        ("contains 'SEC-004' or contains 'curl'", "all fine", False),
        ("starts with '{'", '  {"row_count": 20}', True),
        ("starts with '{'", 'Here: {"row_count": 20}', False),
        ("starts with 'dear'", "  DEAR team", True),
        ("ends with 'DONE'", "all done\n", True),
        ("ends with '}'", '{"a": 1}\n\n', True),
        ('matches regex /"row_count"\\s*:\\s*20/', '{"row_count" : 20}', True),
        ("matches regex /Row_Count/", '{"row_count": 20}', False),  # as written: case counts
        ("has at least 3 lines", "a\nb\nc", True),
        ("has at least 3 lines", "a\nb\n", False),
        ("is valid json", '```json\n{"a": 1}\n```', True),
    ],
)
def test_phrases_grade_as_skill_eval_means(
    registry: CheckRegistry, text: str, answer: str, passed: bool
) -> None:
    expect = parse_phrase(text)
    assert expect is not None
    assert registry.evaluate(registry.parse(expect), answer).passed is passed


def test_min_lines_says_what_it_counted(registry: CheckRegistry) -> None:
    result = registry.evaluate(registry.parse({"min_lines": 3}), "one\ntwo")
    assert (result.passed, result.expected, result.actual) == (False, "at least 3 lines", "2 lines")


@pytest.mark.parametrize("value", [0, -1, True, "3", 2.5])
def test_min_lines_takes_a_positive_whole_number(registry: CheckRegistry, value: object) -> None:
    with pytest.raises(ValueError, match="positive whole number"):
        registry.parse({"min_lines": value})
