"""``skill_meta.json``: upskill's form (``tests``, or a bare list of test cases) and the
article form (``cases``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_skills.checks import CheckRegistry
from pytest_skills.discovery import SKILL_META_NAME
from pytest_skills.formats.case_list import locate_cases, read_case_list
from pytest_skills.formats.data import KeyPath, Suite
from pytest_skills.formats.reader import CASE_KEYS, Source

FILE_NAME = SKILL_META_NAME
LIST_KEYS = ("tests", "cases")
#: The form each place of the case list means.
FORMS: dict[KeyPath, str] = {("tests",): "upskill", ("cases",): "article", (): "upskill"}
TOP_KEYS = frozenset({*LIST_KEYS, "skill", "defaults", "metadata", "name", "description"})


def where(path: Path, data: Any, lines: dict[KeyPath, int]) -> KeyPath | None:
    return locate_cases(path, data, lines, LIST_KEYS, CASE_KEYS, bare_list=True)


def sniff(path: Path, data: Any, lines: dict[KeyPath, int]) -> str | None:
    """The form's name when the file holds a list of cases, else None."""
    at = where(path, data, lines)
    return None if at is None else FORMS[at]


def load_skill_meta(source: Source, registry: CheckRegistry) -> Suite:
    at = where(source.path, source.data, source.lines)
    assert at is not None  # sniffed before
    return read_case_list(source, registry, TOP_KEYS, at)
