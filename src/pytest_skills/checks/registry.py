"""Checks as data, the registry of kinds, and the text helpers the kinds share.

A case's ``expect`` mapping becomes one :class:`Check` tree at collection time (so a
bad regex or an unknown kind is a collection error, not a test failure); at run
time the tree is evaluated against the answer into a :class:`CheckResult` tree that
says which check failed, what it wanted and what it saw.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pytest_skills.errors import SkillsError

COMBINATORS = ("all", "any")
#: How deep ``all``/``any`` may nest: deeper trees are no clearer, only slower to read.
MAX_CHECK_DEPTH = 16
#: The most of an answer a failure message shows; reports keep the whole answer.
SHOWN_ANSWER_CHARS = 4000


class CheckSpecError(SkillsError, ValueError):
    """An expectation that cannot be used; ``path`` locates it inside ``expect``."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.path = path


class CheckError(SkillsError):
    """Raised by an evaluator that cannot grade at all (no judge model, the judge's call
    failed). Unlike a failed :class:`CheckResult` it is no verdict on the answer: the
    item reports the error and the answer is left out of the pass rates."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Check:
    kind: str
    #: Normalised by the kind's validator: for ``all``/``any`` a tuple of Checks.
    value: Any
    #: Where the check sits inside the case's ``expect`` mapping (for line lookup).
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckResult:
    kind: str
    passed: bool
    expected: str
    #: What was seen, or why it failed: shown beside ``expected`` on failure.
    actual: str
    children: tuple[CheckResult, ...] = ()
    #: Texts of the answer behind the verdict, for the HTML report to mark: what a
    #: passing ``contains`` or ``regex`` found, the forbidden text a failing
    #: ``not_contains`` found. Matched there ignoring case.
    marks: tuple[str, ...] = ()

    def failures(self) -> list[CheckResult]:
        """The leaf results that made this one fail (all leaves of a failed ``any``)."""
        if self.passed:
            return []
        if not self.children:
            return [self]
        return [leaf for child in self.children for leaf in child.failures()]


Evaluator = Callable[[Any, str], CheckResult]
Validator = Callable[[Any], Any]


@dataclass(frozen=True)
class CheckKind:
    name: str
    evaluate: Evaluator
    validate: Validator
    description: str = ""


class CheckRegistry:
    """Check kinds by name. Plugins add theirs in ``pytest_skills_register_checks``."""

    def __init__(self) -> None:
        self._kinds: dict[str, CheckKind] = {}

    def register(
        self,
        name: str,
        evaluate: Evaluator,
        *,
        validate: Validator | None = None,
        description: str = "",
    ) -> None:
        """Add (or replace) a kind. ``validate`` normalises the YAML value or raises ValueError."""
        if name in COMBINATORS:
            raise ValueError(f"{name!r} is a combinator and cannot be redefined")
        self._kinds[name] = CheckKind(
            name, evaluate, validate or (lambda value: value), description
        )

    def __contains__(self, name: object) -> bool:
        return name in self._kinds or name in COMBINATORS

    def evaluator(self, name: str) -> Evaluator | None:
        """The function that grades ``name`` checks, if that kind is registered."""
        kind = self._kinds.get(name)
        return kind.evaluate if kind is not None else None

    @property
    def kinds(self) -> list[str]:
        return sorted([*self._kinds, *COMBINATORS])

    def parse(self, expect: Any, path: tuple[str | int, ...] = ()) -> Check:
        """Turn an ``expect`` mapping into one Check; several keys mean all must pass."""
        return self._parse(expect, path, 0)

    def _parse(self, expect: Any, path: tuple[str | int, ...], depth: int) -> Check:
        if not isinstance(expect, Mapping) or not expect:
            raise CheckSpecError("expected a mapping of check kinds, e.g. {contains: '9.0'}", path)
        checks = tuple(
            self._parse_one(str(k), v, (*path, str(k)), depth) for k, v in expect.items()
        )
        return checks[0] if len(checks) == 1 else Check("all", checks, path)

    def _parse_one(self, kind: str, value: Any, path: tuple[str | int, ...], depth: int) -> Check:
        if kind in COMBINATORS:
            if not isinstance(value, Sequence) or isinstance(value, str) or not value:
                raise CheckSpecError(f"'{kind}' takes a non-empty list of expectations", path)
            if depth >= MAX_CHECK_DEPTH:
                raise CheckSpecError(
                    f"'all' and 'any' nest more than {MAX_CHECK_DEPTH} levels deep; flatten them",
                    path,
                )
            children = tuple(self._parse(v, (*path, i), depth + 1) for i, v in enumerate(value))
            return Check(kind, children, path)
        if kind not in self._kinds:
            raise CheckSpecError(
                f"unknown check kind {kind!r}; known kinds: {', '.join(self.kinds)}", path
            )
        try:
            normalised = self._kinds[kind].validate(value)
        except (ValueError, TypeError) as error:
            raise CheckSpecError(f"{kind}: {error}", path) from None
        return Check(kind, normalised, path)

    def evaluate(self, check: Check, answer: str) -> CheckResult:
        if check.kind in COMBINATORS:
            children = tuple(self.evaluate(child, answer) for child in check.value)
            combine = all if check.kind == "all" else any
            passed = combine(child.passed for child in children)
            summary = f"{sum(c.passed for c in children)} of {len(children)} passed"
            return CheckResult(
                check.kind, passed, f"{check.kind} of {len(children)}", summary, children
            )
        return self._kinds[check.kind].evaluate(check.value, answer)


# --- helpers the kinds share -------------------------------------------------------


#: What a YAML author meant by a value that is no string: YAML 1.1 reads these words as
#: booleans, ``2024-01-01`` as a date and an empty value as null.
_QUOTE_IT = (
    "quote it to check for the text (YAML reads yes, no, on, off, true and false as "
    "booleans, and dates as dates)"
)


def text_of(value: Any, wanted: str = "a string") -> str:
    """``value`` as the text a string check looks for: a string, or a number as written.

    Numbers read from a file keep their text (``str()`` of the loader's numbers is what
    was written: ``3.10``, ``010``); a number from Python code is its ``str()``.
    Whitespace-only text is refused: ``' '`` is in nearly every answer, so a check of
    it would pass (or fail) whatever the model said.
    """
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"expected {wanted}, not {_named(value)}")
    text = str(value)
    if not text.strip():
        raise ValueError(
            f"{text!r} is empty or only whitespace, which matches (nearly) every answer; "
            "give the text to look for"
        )
    return text


def _named(value: Any) -> str:
    """What ``value`` is, and for a scalar YAML did not read as text, what to do."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}; {_QUOTE_IT}"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, (date, datetime)):
        return f"a date; {_QUOTE_IT}"
    if isinstance(value, Sequence) and not value:
        return "an empty list"
    return f"a {type(value).__name__}"


def string_list(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, (str, int, float)) else value
    if not isinstance(items, Sequence) or isinstance(items, bytes) or not items:
        raise ValueError(f"expected a string or a non-empty list of strings, not {_named(value)}")
    return tuple(text_of(item, "a string or a list of strings") for item in items)


def one_string(value: Any) -> str:
    return text_of(value)


def clip(text: str, limit: int = SHOWN_ANSWER_CHARS) -> str:
    """``text``, or its start and end with a note of what was left out."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 4) :]
    left_out = len(text) - len(head) - len(tail)
    return (
        f"{head}\n[... {left_out:,} characters left out here; --skill-report and JUnit XML "
        "keep the whole answer ...]"
        f"\n{tail}"
    )


def shown(text: str, limit: int = 400) -> str:
    """``repr(text)``, cut at ``limit`` characters with the full length noted."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit - 1] + '…'!r} ({len(text):,} characters)"


def excerpt(answer: str, limit: int = 160) -> str:
    flat = " ".join(answer.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def missing(needles: Sequence[str], text: str) -> list[str]:
    """The needles that do not appear in ``text``, ignoring case (upskill's ``contains``)."""
    lowered = text.casefold()
    return [n for n in needles if n.casefold() not in lowered]


_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def unfenced(text: str) -> str:
    """The content of ``text`` when it is one code fence, else ``text`` itself."""
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text
