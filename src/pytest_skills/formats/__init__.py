"""Reading skill test files: one module per format, one shared reader, frozen data out.

Nothing in this package imports pytest. :func:`load_suite` picks the format by file
name; :func:`is_skill_test_file` says which files the plugin collects.
"""

from __future__ import annotations

from pathlib import Path

from pytest_skills.checks import CheckRegistry
from pytest_skills.formats.agent_evals import is_evals_file, load_evals
from pytest_skills.formats.data import Case, FormatError, Skill, Suite, user_message
from pytest_skills.formats.native import SUFFIXES as NATIVE_SUFFIXES
from pytest_skills.formats.native import load_native
from pytest_skills.formats.skill_md import load_skill
from pytest_skills.formats.skill_meta import FILE_NAME as SKILL_META_NAME
from pytest_skills.formats.skill_meta import load_skill_meta

__all__ = [
    "Case",
    "FormatError",
    "Skill",
    "Suite",
    "is_skill_test_file",
    "load_skill",
    "load_suite",
    "user_message",
]


def is_skill_test_file(path: Path) -> bool:
    return (
        path.name == SKILL_META_NAME or path.name.endswith(NATIVE_SUFFIXES) or is_evals_file(path)
    )


def load_suite(path: Path, registry: CheckRegistry) -> Suite:
    """Load any of the formats, chosen by the file's name."""
    if is_evals_file(path):
        return load_evals(path, registry)
    if path.name.endswith(NATIVE_SUFFIXES):
        return load_native(path, registry)
    return load_skill_meta(path, registry)
