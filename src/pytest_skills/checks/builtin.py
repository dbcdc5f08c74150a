"""The built-in check kinds: contains, not_contains, regex, equals, starts_with,
ends_with, min_lines, json.

``verify`` (upskill's verifiers) is in ``verify.py`` and ``judge`` in ``judge.py``;
:func:`register_builtin_checks` adds all but the judge, which needs a model.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, replace
from typing import Any

import regex

from pytest_skills.checks.registry import (
    CheckError,
    CheckRegistry,
    CheckResult,
    Evaluator,
    Validator,
    excerpt,
    missing,
    one_string,
    shown,
    string_list,
    unfenced,
)
from pytest_skills.checks.verify import register_verify_check

#: How long one regex search may take. Catastrophic backtracking on a long answer
#: would otherwise hold the run forever (Python's re cannot be interrupted).
REGEX_TIMEOUT_S = 2.0


@functools.lru_cache(maxsize=4096)
def _listed(prefix: str, needles: tuple[str, ...]) -> str:
    # One string per check, not one per answer graded: records keep them all.
    return prefix + ", ".join(repr(n) for n in needles)


def _contains(needles: tuple[str, ...], answer: str) -> CheckResult:
    # upskill's meaning: every listed string appears, ignoring case.
    absent = missing(needles, answer)
    expected = _listed("contains ", needles)
    actual = f"missing {', '.join(repr(m) for m in absent)}" if absent else "all present"
    return CheckResult("contains", not absent, expected, actual, marks=() if absent else needles)


def _icontains(needles: tuple[str, ...], answer: str) -> CheckResult:
    # Same test as contains; the result names the kind the file used.
    return replace(_contains(needles, answer), kind="icontains")


def _not_contains(needles: tuple[str, ...], answer: str) -> CheckResult:
    lowered = answer.casefold()
    present = [n for n in needles if n.casefold() in lowered]
    expected = _listed("contains none of ", needles)
    actual = f"found {', '.join(repr(p) for p in present)}" if present else "none present"
    return CheckResult("not_contains", not present, expected, actual, marks=tuple(present))


@dataclass(frozen=True)
class Pattern:
    """A ``regex`` check's pattern: Python's ``re`` syntax, matched within a time bound."""

    text: str
    #: The same pattern compiled by the ``regex`` package, whose matching can time out.
    bounded: Any

    @functools.cached_property  # one string per check, not one per answer graded
    def expected(self) -> str:
        return f"matches /{self.text}/"


def _compile(value: Any) -> Pattern:
    text = one_string(value)
    try:
        # Python's own re decides what a valid pattern is: the syntax users know.
        re.compile(text)
        bounded = regex.compile(text)
    except (re.error, regex.error, OverflowError, RecursionError, ValueError) as error:
        # OverflowError: a repeat count too big; RecursionError: groups nested thousands deep.
        reason = str(error) or type(error).__name__
        raise ValueError(f"bad regular expression {shown(text, 200)}: {reason}") from None
    return Pattern(text, bounded)


def _regex(pattern: Pattern, answer: str) -> CheckResult:
    try:
        match = pattern.bounded.search(answer, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        raise CheckError(
            f"regex /{pattern.text}/ gave up after {REGEX_TIMEOUT_S:g} s on a "
            f"{len(answer):,}-character answer: the pattern backtracks catastrophically; "
            "avoid nested repeats such as (a+)+ or overlapping alternatives such as (a|aa)+"
        ) from None
    actual = f"matched {shown(match.group(0))}" if match else f"no match in {excerpt(answer)}"
    marks = (match.group(0),) if match and match.group(0).strip() else ()
    return CheckResult("regex", match is not None, pattern.expected, actual, marks=marks)


def _equals(expected: str, answer: str) -> CheckResult:
    # Surrounding whitespace is noise from every model; inner text must be exact.
    return CheckResult(
        "equals",
        answer.strip() == expected.strip(),
        shown(expected.strip()),
        shown(answer.strip()),
    )


def _starts_with(prefix: str, answer: str) -> CheckResult:
    return CheckResult(
        "starts_with",
        answer.lstrip().startswith(prefix),
        f"starts with {prefix!r}",
        excerpt(answer, 60),
    )


def _ends_with(suffix: str, answer: str) -> CheckResult:
    return CheckResult(
        "ends_with",
        answer.rstrip().endswith(suffix),
        f"ends with {suffix!r}",
        excerpt(answer[-200:], 60),
    )


def _line_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("expected a positive whole number of lines")
    return value


def _min_lines(least: int, answer: str) -> CheckResult:
    # Lines as str.splitlines counts them, blank ones included (skill-eval's count).
    count = len(answer.splitlines())
    return CheckResult("min_lines", count >= least, f"at least {least} lines", f"{count} lines")


def _json_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _json(should_parse: bool, answer: str) -> CheckResult:
    # Models often wrap JSON in one code fence; the content is still the answer.
    try:
        json.loads(unfenced(answer))
        parsed, detail = True, "valid JSON"
    except ValueError as error:
        parsed, detail = False, f"not JSON ({error})"
    except RecursionError:
        parsed, detail = False, "not JSON this reader accepts (nested too deeply)"
    return CheckResult(
        "json", parsed == should_parse, "valid JSON" if should_parse else "not JSON", detail
    )


def register_builtin_checks(registry: CheckRegistry) -> None:
    """Add the built-in kinds, keeping any a plugin or conftest registered first."""
    builtins: list[tuple[str, Evaluator, Validator, str]] = [
        ("contains", _contains, string_list, "every string appears, ignoring case"),
        ("icontains", _icontains, string_list, "alias of contains"),
        ("not_contains", _not_contains, string_list, "none of the strings appears, ignoring case"),
        ("regex", _regex, _compile, "re.search matches"),
        ("equals", _equals, one_string, "the answer, stripped, equals the string"),
        ("starts_with", _starts_with, one_string, "the answer, left-stripped, starts with it"),
        ("ends_with", _ends_with, one_string, "the answer, right-stripped, ends with it"),
        ("min_lines", _min_lines, _line_count, "the answer has at least this many lines"),
        ("json", _json, _json_flag, "the answer (or its one code fence) parses as JSON"),
    ]
    for name, evaluate, validate, description in builtins:
        if name not in registry:
            registry.register(name, evaluate, validate=validate, description=description)
    # upskill's verifiers become this kind at parse time (see verify.py).
    register_verify_check(registry)
