r"""The built-in check kinds: contains, not_contains, regex, equals, starts_with,
ends_with, min_lines, json.

``verify`` (upskill's verifiers) is in ``verify.py`` and ``judge`` in ``judge.py``;
:func:`register_builtin_checks` adds all but the judge, which needs a model.

One regular expression engine, the ``regex`` package (its default, re-compatible
``VERSION0`` syntax plus its additions: ``\p{L}``, POSIX classes such as
``[[:alpha:]]``, fuzzy matching such as ``(?:colour){e<=1}``), both decides whether a
pattern is valid and matches it: it alone can stop a search at a time bound. Its
compiler is slow on large patterns and unrolls counted repeats (a 27-character pattern
of nested ``{1000}`` stands for 10**9 atoms), so patterns are measured before they are
compiled: their length, what their counted repeats unroll to, and, within
:func:`pattern_budget` (one skill test file), the total of both.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
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


#: The longest pattern: compiling takes time in proportion to the text.
MAX_PATTERN_CHARS = 10_000
#: The most atoms a pattern may stand for once its counted repeats are unrolled
#: (``a{1000}`` is 1,000; ``(?:a{100}){100}`` is 10,000).
MAX_PATTERN_ATOMS = 100_000
#: What the distinct patterns of one skill test file may add up to, both ways.
MAX_FILE_PATTERN_CHARS = 200_000
MAX_FILE_PATTERN_ATOMS = 1_000_000


@dataclass(frozen=True)
class Pattern:
    """A ``regex`` check's pattern, compiled by the ``regex`` package: matched within a
    time bound."""

    text: str
    bounded: Any

    @functools.cached_property  # one string per check, not one per answer graded
    def expected(self) -> str:
        return f"matches /{self.text}/"


@dataclass
class _Budget:
    chars: int = 0
    atoms: int = 0
    seen: set[str] = field(default_factory=set)


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "pattern_budget", default=None
)


@contextlib.contextmanager
def pattern_budget() -> Iterator[None]:
    """Patterns validated inside share one budget (a file's: see the module's doc)."""
    token = _budget.set(_Budget())
    try:
        yield
    finally:
        _budget.reset(token)


_QUANTIFIER = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
#: Escapes that take a braced argument: ``\p{L}``, ``\N{DASH}``, ``\x{263a}``.
_BRACED_ESCAPES = frozenset("pPNx")
#: Past this any count is as bad as another; keeps the arithmetic small.
_ATOMS_CAP = 10**12


def _class_end(text: str, start: int) -> int:
    """The index after the character class opened at ``start``.

    ``[`` inside a class is taken as a literal (but for ``[:alpha:]``): with the
    ``regex`` package's nested sets (``VERSION1``) a class then ends early and the rest
    counts as atoms, which can only overstate a pattern, never hide one.
    """
    i = start + 1
    if text.startswith("^", i):
        i += 1
    if text.startswith("]", i):
        i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text.startswith("[:", i) and (close := text.find(":]", i + 2)) != -1:
            i = close + 2
        elif text[i] == "]":
            return i + 1
        else:
            i += 1
    return len(text)


def pattern_atoms(text: str) -> int:
    """How many atoms ``text`` stands for with its counted repeats unrolled: an upper
    bound of what the ``regex`` compiler writes out, read without compiling."""
    groups: list[list[int]] = [[]]
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            braced = text[i + 1 : i + 2] in _BRACED_ESCAPES and text.startswith("{", i + 2)
            close = text.find("}", i + 2) if braced else -1
            i = close + 1 if close != -1 else i + 2
            groups[-1].append(1)
        elif char == "[":
            i = _class_end(text, i)
            groups[-1].append(1)
        elif char == "(":
            groups.append([])
            i += 1
        elif char == ")":
            if len(groups) > 1:
                inner = groups.pop()
                groups[-1].append(max(1, min(sum(inner), _ATOMS_CAP)))
            i += 1
        elif char == "{" and groups[-1] and (found := _QUANTIFIER.match(text, i)):
            low, comma, high = found.groups()
            if not (low or high):
                groups[-1].append(1)
                i += 1
                continue
            count = max(int(low or 0), int(high or 0), 1) if comma else int(low or 1)
            groups[-1][-1] = min(groups[-1][-1] * max(count, 1), _ATOMS_CAP)
            i = found.end()
        else:
            groups[-1].append(1)
            i += 1
    while len(groups) > 1:  # unbalanced: the compiler will say so
        inner = groups.pop()
        groups[-1].append(min(sum(inner), _ATOMS_CAP))
    return min(sum(groups[0]), _ATOMS_CAP)


def _measured(text: str) -> None:
    """Refuse a pattern too costly to compile, alone or with the file's others."""
    if len(text) > MAX_PATTERN_CHARS:
        raise ValueError(
            f"bad regular expression {shown(text, 60)}: patterns are limited to "
            f"{MAX_PATTERN_CHARS:,} characters (split it into several regex checks)"
        )
    atoms = pattern_atoms(text)
    if atoms > MAX_PATTERN_ATOMS:
        raise ValueError(
            f"bad regular expression {shown(text, 60)}: it repeats to {atoms:,} atoms or more once "
            f"its counted repeats ({{n}}) are unrolled; at most {MAX_PATTERN_ATOMS:,} "
            "(use + or * instead of large counts)"
        )
    budget = _budget.get()
    if budget is None or text in budget.seen:
        return
    budget.seen.add(text)
    budget.chars += len(text)
    budget.atoms += atoms
    if budget.chars > MAX_FILE_PATTERN_CHARS or budget.atoms > MAX_FILE_PATTERN_ATOMS:
        raise ValueError(
            f"the file's distinct regular expressions add up to more than "
            f"{MAX_FILE_PATTERN_CHARS:,} characters or {MAX_FILE_PATTERN_ATOMS:,} "
            "unrolled atoms, too many to compile at collection; use fewer or shorter "
            "patterns, or split the file"
        )


def _compile(value: Any) -> Pattern:
    text = one_string(value)
    _measured(text)
    return _compiled(text)


@functools.lru_cache(maxsize=1024)  # the same pattern in many cases is compiled once
def _compiled(text: str) -> Pattern:
    try:
        bounded = regex.compile(text)
    except (regex.error, OverflowError, RecursionError, ValueError) as error:
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


def _exact(value: Any) -> str:
    # equals '' is a real expectation (an empty answer), unlike an empty needle.
    if isinstance(value, str) and not value.strip():
        return value
    return one_string(value)


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
        ("regex", _regex, _compile, "the regex package's search matches (docs/checks.md)"),
        ("equals", _equals, _exact, "the answer, stripped, equals the string"),
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
