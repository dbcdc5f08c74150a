"""The native ``*.skill.yaml`` format (documented in the README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_skills.checks import CheckRegistry
from pytest_skills.discovery import NATIVE_SUFFIXES
from pytest_skills.formats.case_list import locate_cases, read_case_list
from pytest_skills.formats.data import KeyPath, Suite
from pytest_skills.formats.reader import CASE_KEYS, Source

FORMAT = "native"
SUFFIXES = NATIVE_SUFFIXES
TOP_KEYS = frozenset({"cases", "skill", "defaults", "metadata", "name", "description"})


def sniff(path: Path, data: Any, lines: dict[KeyPath, int]) -> str | None:
    """The format's name when the file holds a ``cases`` list, else None."""
    at = locate_cases(path, data, lines, ("cases",), CASE_KEYS, bare_list=False)
    return None if at is None else FORMAT


def load_native(source: Source, registry: CheckRegistry) -> Suite:
    return read_case_list(source, registry, TOP_KEYS, ("cases",))
