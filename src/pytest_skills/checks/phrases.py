"""Deterministic assertions written in plain words: skill-eval's mini-language.

Authors who grade with skill-eval write assertions such as ``contains 'A' or contains
'B'`` in ``evals.json`` and grade them without a model. :func:`parse_phrase` turns such
a sentence into an ``expect`` mapping of check kinds when the whole sentence is in the
language, and says None otherwise (the caller keeps it as a judge rubric):

=================================  ==========================================
phrase                             check
=================================  ==========================================
``contains 'X'``                   ``contains`` (ignoring case)
``does not contain 'X'``           ``not_contains`` (ignoring case)
``starts with 'X'``                the stripped answer starts with X, ignoring case
``ends with 'X'``                  the stripped answer ends with X, ignoring case
``matches regex /P/``              ``regex`` P (``matches pattern`` too)
``has at least N lines``           ``min_lines`` N
``is valid json``                  ``json: true`` (``output is valid json`` too)
``A or B or C``                    ``any`` of the phrases A, B, C
=================================  ==========================================

Literals are quoted with ``'`` or ``"``: unquoted words (``contains a summary``) are
prose, for a judge. Keywords ignore case, as in skill-eval. Pure code.
"""

from __future__ import annotations

import re
from typing import Any

Expect = dict[str, Any]

#: Longer text is prose: a phrase is one short sentence (and parsing stays quick).
MAX_PHRASE_CHARS = 1000
_OR = re.compile(r"\s+or\s+", re.IGNORECASE)
_END = re.compile(r"\s*\Z")
_QUOTED = ("contains", "does not contain", "starts with", "ends with")
_REGEX = re.compile(r"matches\s+(?:regex|pattern)\s+/", re.IGNORECASE)
_LINES = re.compile(r"has\s+at\s+least\s+(\d{1,6})\s+lines?\b", re.IGNORECASE)
_JSON = re.compile(r"(?:output\s+)?is\s+valid\s+json\b", re.IGNORECASE)


def parse_phrase(text: str) -> Expect | None:
    """The ``expect`` mapping ``text`` stands for, or None when it is not wholly a phrase.

    Where a literal could end at more than one quote, the first ending from which the
    rest of the sentence parses is taken (skill-eval splits at ``or`` the same way).
    """
    text = text.strip()
    if len(text) > MAX_PHRASE_CHARS:
        return None
    clauses = _phrase(text, 0, {})
    if clauses is None:
        return None
    return clauses[0] if len(clauses) == 1 else {"any": clauses}


def negated(expect: Expect) -> Expect | None:
    """The check that passes when ``expect`` fails, when one kind says it: ``contains``
    and ``not_contains`` swap, an ``any`` of ``contains`` is ``not_contains`` of all."""
    kind, value = next(iter(expect.items()))
    if kind == "contains":
        return {"not_contains": value}
    if kind == "not_contains":
        return {"contains": value}
    if kind == "any" and all(next(iter(child)) == "contains" for child in value):
        return {"not_contains": [child["contains"] for child in value]}
    return None


def _phrase(text: str, start: int, known: dict[int, list[Expect] | None]) -> list[Expect] | None:
    """The clauses from ``start`` to the end of ``text``, joined by ``or``; ``known``
    holds the answers for later starts, so each start is parsed once."""
    if start not in known:
        known[start] = _parse_from(text, start, known)
    return known[start]


def _parse_from(
    text: str, start: int, known: dict[int, list[Expect] | None]
) -> list[Expect] | None:
    for clause, end in _clauses(text, start):
        if _END.match(text, end):
            return [clause]
        joined = _OR.match(text, end)
        if joined is None:
            continue
        rest = _phrase(text, joined.end(), known)
        if rest is not None:
            return [clause, *rest]
    return None


def _clauses(text: str, start: int) -> list[tuple[Expect, int]]:
    """Every way one clause can be read at ``start``: (its check, where it ends)."""
    lowered = text.lower()
    for keyword in _QUOTED:
        if lowered.startswith(keyword, start):
            after = re.compile(r"\s+").match(text, start + len(keyword))
            if after is None:
                return []
            return [
                (_quoted(keyword, literal), end) for literal, end in _literals(text, after.end())
            ]
    regex = _REGEX.match(text, start)
    if regex is not None:
        return [
            ({"regex": pattern}, end) for pattern, end in _delimited(text, regex.end() - 1, "/")
        ]
    lines = _LINES.match(text, start)
    if lines is not None and int(lines.group(1)) > 0:
        return [({"min_lines": int(lines.group(1))}, lines.end())]
    valid = _JSON.match(text, start)
    if valid is not None:
        return [({"json": True}, valid.end())]
    return []


def _literals(text: str, start: int) -> list[tuple[str, int]]:
    if start >= len(text) or text[start] not in "'\"":
        return []
    return _delimited(text, start, text[start])


def _delimited(text: str, start: int, mark: str) -> list[tuple[str, int]]:
    """Each non-empty text between ``text[start]`` and a later ``mark``, shortest first.

    A quote inside a quoted literal is read only as an apostrophe (``'it's'``: letters
    on both sides); anywhere else it ends the literal, so ``contains 'a' and contains
    'b'`` is prose, not the literal ``a' and contains 'b``.
    """
    found = []
    end = text.find(mark, start + 1)
    while end != -1:
        if end > start + 1:
            found.append((text[start + 1 : end], end + 1))
        if mark != "/" and not _apostrophe(text, end):
            break
        end = text.find(mark, end + 1)
    return found


def _apostrophe(text: str, at: int) -> bool:
    return 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum()


def _quoted(keyword: str, literal: str) -> Expect:
    if keyword == "contains":
        return {"contains": literal}
    if keyword == "does not contain":
        return {"not_contains": literal}
    # skill-eval compares both ends ignoring case; the plain kinds compare exactly, which
    # is the same test when the literal has no letters that change with case.
    caseless = literal.lower() == literal.upper()
    if keyword == "starts with":
        return (
            {"starts_with": literal} if caseless else {"regex": rf"(?i)\A\s*{re.escape(literal)}"}
        )
    return {"ends_with": literal} if caseless else {"regex": rf"(?i){re.escape(literal)}\s*\Z"}
