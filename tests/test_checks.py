"""Check kinds, combinators and the registry, evaluated on plain strings."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_skills.checks import (
    Check,
    CheckRegistry,
    CheckResult,
    CheckSpecError,
    register_builtin_checks,
)


@pytest.fixture
def registry() -> CheckRegistry:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    return registry


def verdict(registry: CheckRegistry, expect: dict[str, Any], answer: str) -> bool:
    return registry.evaluate(registry.parse(expect), answer).passed


# --- built-in kinds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expect", "answer", "passed"),
    [
        ({"contains": "9.0"}, 'capabilities = ["9.0"]', True),
        ({"contains": "9.0"}, 'capabilities = ["8.0"]', False),
        ({"contains": "H100"}, "targets the h100", True),  # case-insensitive
        ({"contains": ["a", "B"]}, "b then A", True),  # every string, any order
        ({"contains": ["a", "z"]}, "a only", False),
        ({"contains": 9.0}, "version 9.0", True),  # YAML numbers read as text
        ({"icontains": "CUDA"}, "cuda kernel", True),
        ({"icontains": ["cuda", "rocm"]}, "CUDA kernel", False),
        ({"not_contains": "sm_80"}, "sm_90a", True),
        ({"not_contains": "sm_80"}, "uses SM_80", False),  # case-insensitive
        ({"not_contains": ["x", "y"]}, "only y here", False),  # none may appear
        ({"regex": r"capabilities\s*=\s*\[\"9\.0\"\]"}, 'capabilities  = ["9.0"]', True),
        ({"regex": r"^\d+$"}, "a 42", False),
        ({"regex": "H100"}, "h100", False),  # regex is case-sensitive unless (?i)
        ({"regex": "(?i)H100"}, "h100", True),
        ({"regex": r"\d{3}"}, "the 404 page", True),  # search, not fullmatch
        ({"equals": "42"}, "  42\n", True),  # surrounding whitespace ignored
        ({"equals": "42"}, "42.", False),
        ({"equals": "yes"}, "Yes", False),  # case matters
        ({"starts_with": "Sure"}, "\n Sure, here", True),
        ({"starts_with": "Sure"}, "Well, sure", False),
        ({"json": True}, '{"a": [1, 2]}', True),
        ({"json": True}, '```json\n{"a": 1}\n```', True),  # one code fence is unwrapped
        ({"json": True}, "```\n[1, 2]\n```\n", True),
        ({"json": True}, "{'a': 1}", False),
        ({"json": True}, "Here you go: {}", False),
        ({"json": False}, "plain words", True),
        ({"json": False}, "[1]", False),
    ],
)
def test_builtin_kinds(
    registry: CheckRegistry, expect: dict[str, Any], answer: str, passed: bool
) -> None:
    assert verdict(registry, expect, answer) is passed


def test_contains_reports_what_is_missing(registry: CheckRegistry) -> None:
    result = registry.evaluate(registry.parse({"contains": ["alpha", "beta", "gamma"]}), "Beta")
    assert not result.passed
    assert result.kind == "contains"
    assert result.expected == "contains 'alpha', 'beta', 'gamma'"
    assert result.actual == "missing 'alpha', 'gamma'"


def test_not_contains_reports_what_was_found(registry: CheckRegistry) -> None:
    result = registry.evaluate(registry.parse({"not_contains": ["sm_80", "sm_70"]}), "SM_80")
    assert not result.passed
    assert result.actual == "found 'sm_80'"


def test_regex_reports_the_match_or_an_excerpt(registry: CheckRegistry) -> None:
    check = registry.parse({"regex": r"\d+"})
    hit = registry.evaluate(check, "answer 42")
    assert hit.actual == "matched '42'"
    miss = registry.evaluate(check, "no digits\nat all " + "word " * 100)
    assert not miss.passed
    assert miss.expected == r"matches /\d+/"
    assert miss.actual.startswith("no match in 'no digits at all word")  # flattened
    assert miss.actual.endswith("…'") and len(miss.actual) < 200  # and shortened


def test_equals_shows_expected_and_actual(registry: CheckRegistry) -> None:
    result = registry.evaluate(registry.parse({"equals": "42"}), "41\n")
    assert (result.expected, result.actual) == ("'42'", "'41'")


def test_json_failure_says_why(registry: CheckRegistry) -> None:
    result = registry.evaluate(registry.parse({"json": True}), "{oops}")
    assert not result.passed
    assert result.actual.startswith("not JSON (")


def test_icontains_failure_names_icontains(registry: CheckRegistry) -> None:
    result = registry.evaluate(registry.parse({"icontains": "cuda"}), "rocm")
    assert not result.passed
    assert result.kind == "icontains"
    assert [leaf.kind for leaf in result.failures()] == ["icontains"]


# --- combinators ----------------------------------------------------------------------


def test_several_keys_mean_all(registry: CheckRegistry) -> None:
    check = registry.parse({"contains": "9.0", "not_contains": "sm_80"})
    assert check.kind == "all"
    assert [child.kind for child in check.value] == ["contains", "not_contains"]
    assert verdict(registry, {"contains": "9.0", "not_contains": "sm_80"}, "9.0")
    assert not verdict(registry, {"contains": "9.0", "not_contains": "sm_80"}, "9.0 sm_80")


def test_single_key_is_not_wrapped(registry: CheckRegistry) -> None:
    check = registry.parse({"contains": "x"})
    assert check == Check("contains", ("x",), ("contains",))


@pytest.mark.parametrize(
    ("answer", "passed"),
    [("uses 9.0", True), ("uses sm_90", True), ("uses 8.0", False)],
)
def test_any(registry: CheckRegistry, answer: str, passed: bool) -> None:
    expect = {"any": [{"contains": "9.0"}, {"regex": r"sm_9\d"}]}
    assert verdict(registry, expect, answer) is passed


@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("json: []", False),
        ("H100 with 9.0", True),
        ("H100 with sm_90", True),
        ("h100 with 8.0", False),
        ("9.0 alone", False),
    ],
)
def test_nested_all_and_any(registry: CheckRegistry, answer: str, passed: bool) -> None:
    expect = {
        "all": [
            {"contains": "h100"},
            {"any": [{"contains": "9.0"}, {"all": [{"regex": "sm_9"}, {"not_contains": "8.0"}]}]},
        ]
    }
    assert verdict(registry, expect, answer) is passed


def test_failures_returns_the_failing_leaves(registry: CheckRegistry) -> None:
    check = registry.parse(
        {
            "all": [
                {"contains": "a"},  # passes
                {"equals": "nope"},  # fails
                {"any": [{"contains": "x"}, {"regex": "y+"}]},  # fails: both leaves fail
            ]
        }
    )
    result = registry.evaluate(check, "a")
    assert not result.passed
    assert result.kind == "all"
    assert result.actual == "1 of 3 passed"
    assert [leaf.kind for leaf in result.failures()] == ["equals", "contains", "regex"]
    assert all(not leaf.passed and not leaf.children for leaf in result.failures())


def test_failures_of_a_passing_check_is_empty(registry: CheckRegistry) -> None:
    result = registry.evaluate(registry.parse({"any": [{"contains": "a"}, {"contains": "z"}]}), "a")
    assert result.passed
    assert result.failures() == []


def test_all_with_one_passing_child_of_any_does_not_blame_it(registry: CheckRegistry) -> None:
    result = registry.evaluate(
        registry.parse(
            {"all": [{"any": [{"contains": "a"}, {"contains": "z"}]}, {"contains": "q"}]}
        ),
        "a",
    )
    assert [leaf.expected for leaf in result.failures()] == ["contains 'q'"]


# --- bad specs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expect", "fragment", "path"),
    [
        ({"shout": "x"}, "unknown check kind 'shout'; known kinds: all, any, contains", ("shout",)),
        ({"regex": "(["}, "regex: bad regular expression '(['", ("regex",)),
        (
            {"all": [{"contains": "a"}, {"regex": "*"}]},
            "bad regular expression",
            ("all", 1, "regex"),
        ),
        ({"any": []}, "'any' takes a non-empty list", ("any",)),
        ({"all": "contains"}, "'all' takes a non-empty list", ("all",)),
        ({"any": [{"nope": 1}]}, "unknown check kind 'nope'", ("any", 0, "nope")),
        ({"contains": []}, "contains: expected a string or a non-empty list", ("contains",)),
        ({"contains": {"a": 1}}, "contains: expected a string", ("contains",)),
        ({"contains": [True]}, "contains: expected a string or a list of strings", ("contains",)),
        ({"contains": ""}, "empty", ("contains",)),
        ({"not_contains": ["a", ""]}, "empty", ("not_contains",)),
        ({"equals": None}, "equals: expected a string", ("equals",)),
        ({"json": "yes"}, "json: expected true or false", ("json",)),
        ({}, "expected a mapping of check kinds", ()),
    ],
)
def test_bad_specs_raise_check_spec_error(
    registry: CheckRegistry, expect: Any, fragment: str, path: tuple[Any, ...]
) -> None:
    with pytest.raises(CheckSpecError) as info:
        registry.parse(expect)
    assert fragment in str(info.value)
    assert info.value.path == path


def test_expect_must_be_a_mapping(registry: CheckRegistry) -> None:
    with pytest.raises(CheckSpecError, match="mapping of check kinds"):
        registry.parse(["contains", "a"], ("cases", 0, "expect"))


def test_spec_error_path_is_prefixed(registry: CheckRegistry) -> None:
    with pytest.raises(CheckSpecError) as info:
        registry.parse({"regex": "("}, ("cases", 2, "expect"))
    assert info.value.path == ("cases", 2, "expect", "regex")


# --- the registry ---------------------------------------------------------------------


def _max_words(limit: int, answer: str) -> CheckResult:
    words = len(answer.split())
    return CheckResult("max_words", words <= limit, f"at most {limit} words", f"{words} words")


def test_register_a_custom_kind(registry: CheckRegistry) -> None:
    registry.register("max_words", _max_words, validate=int, description="word limit")
    assert "max_words" in registry
    assert "max_words" in registry.kinds
    check = registry.parse({"max_words": "3", "contains": "a"})
    assert check.value[0] == Check("max_words", 3, ("max_words",))  # validate normalised it
    assert registry.evaluate(check, "a b c").passed
    result = registry.evaluate(check, "a b c d")
    assert [(leaf.kind, leaf.actual) for leaf in result.failures()] == [("max_words", "4 words")]


def test_custom_validator_errors_are_spec_errors(registry: CheckRegistry) -> None:
    registry.register("max_words", _max_words, validate=int)
    with pytest.raises(CheckSpecError, match="max_words: invalid literal"):
        registry.parse({"max_words": "many"})


def test_register_without_validator_keeps_the_value() -> None:
    registry = CheckRegistry()
    registry.register("is", lambda value, answer: CheckResult("is", answer == value, value, answer))
    assert registry.parse({"is": "x"}).value == "x"
    assert registry.kinds == ["all", "any", "is"]
    # Nothing else is known to an empty registry.
    with pytest.raises(CheckSpecError, match="unknown check kind 'contains'"):
        registry.parse({"contains": "x"})


def test_register_replaces_a_kind(registry: CheckRegistry) -> None:
    registry.register("contains", lambda v, a: CheckResult("contains", True, "", ""))
    assert verdict(registry, {"contains": "never there"}, "answer")


@pytest.mark.parametrize("name", ["all", "any"])
def test_combinators_cannot_be_redefined(registry: CheckRegistry, name: str) -> None:
    with pytest.raises(ValueError, match="combinator"):
        registry.register(name, _max_words)


def test_builtin_kinds_are_registered(registry: CheckRegistry) -> None:
    assert registry.kinds == sorted(
        [
            "all",
            "any",
            "contains",
            "icontains",
            "not_contains",
            "regex",
            "equals",
            "starts_with",
            "ends_with",
            "min_lines",
            "json",
            "verify",
        ]
    )


def test_builtin_registration_keeps_a_kind_registered_first() -> None:
    from pytest_skills.checks import CheckRegistry, CheckResult, register_builtin_checks

    registry = CheckRegistry()
    registry.register("contains", lambda value, answer: CheckResult("contains", True, "x", "y"))
    register_builtin_checks(registry)
    check = registry.parse({"contains": "absent"})
    assert registry.evaluate(check, "nothing here").passed
    assert "regex" in registry
