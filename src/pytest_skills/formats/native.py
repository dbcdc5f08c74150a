"""The native ``*.skill.yaml`` format (documented in the README)."""

from __future__ import annotations

from pathlib import Path

from pytest_skills.checks import CheckRegistry
from pytest_skills.formats.data import Suite
from pytest_skills.formats.reader import read_case_list

SUFFIXES = (".skill.yaml", ".skill.yml")
FORMS = {
    "cases": (
        "native",
        frozenset({"cases", "skill", "defaults", "metadata", "name", "description"}),
    )
}


def load_native(path: Path, registry: CheckRegistry) -> Suite:
    return read_case_list(path, registry, FORMS, "'cases'")
