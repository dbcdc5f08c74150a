"""``skill_meta.json``: upskill's form (``tests``) and the article form (``cases``)."""

from __future__ import annotations

from pathlib import Path

from pytest_skills.checks import CheckRegistry
from pytest_skills.formats.data import Suite
from pytest_skills.formats.reader import read_case_list

FILE_NAME = "skill_meta.json"
_COMMON_TOP = frozenset({"skill", "defaults", "metadata", "name", "description"})
FORMS = {
    "tests": ("upskill", _COMMON_TOP | {"tests"}),
    "cases": ("article", _COMMON_TOP | {"cases"}),
}


def load_skill_meta(path: Path, registry: CheckRegistry) -> Suite:
    return read_case_list(path, registry, FORMS, "'cases' (or upskill's 'tests')")
