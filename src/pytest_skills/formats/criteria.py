"""What an Agent Skills eval is graded on: its criteria, under the names found in the wild.

* Must hold: ``assertions`` (the spec), ``expectations`` (skill-creator),
  ``expected_behaviors`` / ``expected_behavior`` (plugins; the singular is Anthropic's
  evaluation docs' spelling; ``behaviour`` too), ``checks``, and ``expect`` as a list.
  One of them per eval.
* Must not happen: ``fail``, a list of failures.
* ``scorers``: objects with a ``type``: ``regex`` (its ``pattern``) or ``llm_judge``
  (its ``criterion``).

An entry is a string, or an object whose ``description`` or ``text`` (with its
``expected``) says it. Written in skill-eval's plain-words mini-language
(``contains 'X' or contains 'Y'``; :mod:`pytest_skills.checks.phrases`) it is graded
without a model, unless its object's ``type`` names a model grader; anything else is a
``judge`` rubric. Pure code: no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_skills.checks import Check
from pytest_skills.checks.phrases import negated, parse_phrase
from pytest_skills.formats.data import KeyPath
from pytest_skills.formats.reader import FileReader

#: Lists of criteria that must hold, by the names authors give them.
MUST_HOLD = (
    "assertions",
    "expectations",
    "expected_behaviors",
    "expected_behavior",
    # British spelling: a near miss of the above, and no typo.
    "expected_behaviours",
    "expected_behaviour",
    "checks",
    "expect",
)
#: Lists of failures: things that must not happen.
MUST_NOT = ("fail",)
SCORERS = "scorers"
CRITERIA_KEYS = frozenset({*MUST_HOLD, *MUST_NOT, SCORERS})
ENTRY_KEYS = frozenset({"name", "id", "description", "text", "expected", "type"})
SCORER_KEYS = frozenset({"type", "name", "pattern", "criterion", "description"})
#: Object types that say "a model grades this": their text is never read as a phrase.
MODEL_GRADED = frozenset({"semantic", "llm_judge", "llm-judge", "llm", "judge", "llm-rubric"})
JUDGE_SCORERS = frozenset({"llm_judge", "llm-judge", "llm", "judge"})
#: How a failure becomes a rubric the judge passes when the failure did not happen.
FAILURE_RUBRIC = "This must NOT happen; the answer fails if it does: {}"


@dataclass(frozen=True)
class Criteria:
    """An eval's criteria read: deterministic checks and judge rubrics, in file order."""

    #: ``(check, None)`` for a deterministic check, ``(None, rubric)`` for a judge's.
    entries: tuple[tuple[Check | None, str | None], ...]
    #: Scorers of a type pytest-skills cannot grade, described for a skip reason.
    ungradable: tuple[str, ...] = ()

    @property
    def given(self) -> bool:
        """Whether the eval names any criterion (gradable or not)."""
        return bool(self.entries or self.ungradable)


def _entry_text(reader: FileReader, item: Any, path: KeyPath, what: str) -> tuple[str, bool]:
    """An entry's text for a judge, and whether it may be read as a phrase."""
    if isinstance(item, str) and item.strip():
        return item, True
    if not isinstance(item, Mapping):
        raise reader.fail(f"{what} must be a non-empty string or an object", path)
    reader.metadata(item, ENTRY_KEYS, path, what)
    texts = {
        key: str(item[key]).strip()
        for key in ("name", "id", "description", "text", "expected")
        if isinstance(item.get(key), (str, int, float)) and str(item[key]).strip()
    }
    said = [texts[key] for key in ("description", "text") if key in texts]
    phrase_ok = str(item.get("type", "")).strip().lower() not in MODEL_GRADED
    if "expected" in texts:
        said.append(f"Expected: {texts['expected']}")
        phrase_ok = False  # a description with a separate expectation is prose
    if not said:
        said.extend([texts[key] for key in ("name", "id") if key in texts][:1])
    if not said:
        raise reader.fail(
            f"{what} has no 'description', 'text' or 'expected' for the judge to grade", path
        )
    return "\n".join(said), phrase_ok and len(said) == 1


def _entry(
    reader: FileReader, item: Any, path: KeyPath, what: str, *, failure: bool
) -> tuple[Check | None, str | None]:
    text, phrase_ok = _entry_text(reader, item, path, what)
    expect = parse_phrase(text) if phrase_ok else None
    if expect is not None and failure:
        expect = negated(expect)
    if expect is not None:
        return reader.parse(expect, path), None
    return None, FAILURE_RUBRIC.format(text) if failure else text


def _scorer(
    reader: FileReader, item: Any, path: KeyPath, what: str
) -> tuple[Check | None, str | None] | str:
    """A scorer's check or rubric; for a type not graded here, its description."""
    if not isinstance(item, Mapping):
        raise reader.fail(f"{what} must be an object with a 'type'", path)
    reader.metadata(item, SCORER_KEYS, path, what)
    kind = item.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise reader.fail(f"{what} needs a 'type' (regex or llm_judge)", path)
    if kind == "regex":
        pattern = item.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise reader.fail(f"{what}: a regex scorer needs a 'pattern' string", path)
        return reader.parse({"regex": pattern}, (*path, "pattern")), None
    if kind.lower() in JUDGE_SCORERS:
        for key in ("criterion", "description"):
            if isinstance(item.get(key), str) and item[key].strip():
                return None, item[key]
        raise reader.fail(f"{what}: an {kind} scorer needs a 'criterion' string", path)
    return f"{what} of type {kind!r}"


def _listed(reader: FileReader, raw: Mapping[str, Any], key: str, path: KeyPath) -> list[Any]:
    items = raw[key]
    if isinstance(items, str) and key != SCORERS:
        return [items]  # one criterion written without its list
    if not isinstance(items, list):
        raise reader.fail(f"'{key}' must be a list of strings or objects", (*path, key))
    return items


def read_criteria(reader: FileReader, raw: Mapping[str, Any], path: KeyPath) -> Criteria:
    """The eval's criteria from every list it gives (``expect`` only when not a mapping)."""
    given = [
        key
        for key in MUST_HOLD
        if raw.get(key) is not None and not (key == "expect" and isinstance(raw[key], Mapping))
    ]
    if len(given) > 1:
        raise reader.fail(
            f"give one of {', '.join(map(repr, MUST_HOLD))}, not both {given[0]!r} "
            f"and {given[1]!r}",
            (*path, given[1]),
        )
    entries: list[tuple[Check | None, str | None]] = []
    ungradable: list[str] = []
    for key in [*given, *(k for k in (*MUST_NOT, SCORERS) if raw.get(k) is not None)]:
        for i, item in enumerate(_listed(reader, raw, key, path)):
            where, what = (*path, key, i), f"'{key}' entry {i + 1}"
            if key == SCORERS:
                scored = _scorer(reader, item, where, what)
                if isinstance(scored, str):
                    ungradable.append(scored)
                else:
                    entries.append(scored)
            else:
                entries.append(_entry(reader, item, where, what, failure=key in MUST_NOT))
    return Criteria(tuple(entries), tuple(ungradable))
