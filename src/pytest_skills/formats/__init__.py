"""Reading skill test files: one module per format, one shared reader, frozen data out.

Nothing in this package imports pytest. Collection goes in two steps:
:func:`open_source` reads a file named like a skill test file and says which format
it holds, or that it holds no cases at all (an unrelated file with that name: not
collected, never an error); :func:`load_suite` (or, for an upskill scenario
manifest, :func:`read_scenarios` and :func:`load_scenario`) turns it into cases.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_skills.checks import CheckRegistry
from pytest_skills.checks.builtin import pattern_budget
from pytest_skills.discovery import (
    is_evals_file,
    is_manifest_file,
    is_native_file,
    is_skill_meta_file,
    is_skill_test_file,
)
from pytest_skills.formats import agent_evals, native, skill_meta, upskill_manifest
from pytest_skills.formats.data import Case, FormatError, KeyPath, Skill, Suite, user_message
from pytest_skills.formats.files import read_budget
from pytest_skills.formats.foreign import ForeignFileError, foreign
from pytest_skills.formats.loading import read_data
from pytest_skills.formats.reader import Source
from pytest_skills.formats.skill_md import load_skill, parse_skill
from pytest_skills.formats.upskill_manifest import Scenario, load_scenario, read_scenarios

__all__ = [
    "SCENARIOS",
    "Case",
    "ForeignFileError",
    "FormatError",
    "Scenario",
    "Skill",
    "Source",
    "Suite",
    "is_skill_test_file",
    "load_scenario",
    "load_skill",
    "load_suite",
    "open_source",
    "parse_skill",
    "read_scenarios",
    "user_message",
]

SCENARIOS = upskill_manifest.FORMAT

Sniff = Callable[[Path, Any, dict[KeyPath, int]], "str | None"]
#: By file name: which format a file may hold.
_BY_NAME: tuple[tuple[Callable[[Path], bool], Sniff], ...] = (
    (is_manifest_file, upskill_manifest.sniff),
    (is_evals_file, agent_evals.sniff),
    (is_native_file, native.sniff),
    (is_skill_meta_file, skill_meta.sniff),
)
#: By file name: the keys whose presence says a file is a skill test file (where its
#: cases live; what a case asks), in the order of ``_BY_NAME``.
_SIGNS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("scenarios",), ()),
    (agent_evals.LIST_KEYS, ("prompt",)),
    (("cases",), ("input",)),
    (skill_meta.LIST_KEYS, ("input",)),
)
_LOADERS: dict[str, Callable[[Source, CheckRegistry], Suite]] = {
    native.FORMAT: native.load_native,
    agent_evals.FORMAT: agent_evals.load_evals,
    **{form: skill_meta.load_skill_meta for form in set(skill_meta.FORMS.values())},
}


def open_source(path: Path) -> Source | None:
    """The file's data and format; None when it holds no cases at all.

    Raises :class:`FormatError` when it cannot be read, or when it meant to hold cases
    and got the key wrong (``case`` for ``cases``); :class:`ForeignFileError` when it cannot
    be read and its text shows no sign of cases (another tool's file).
    """
    found = next((i for i, (named, _) in enumerate(_BY_NAME) if named(path)), None)
    if found is None:
        return None
    sniff = _BY_NAME[found][1]
    try:
        data, lines = read_data(path)
    except FormatError as error:
        raise foreign(path, error, *_SIGNS[found]) or error from None
    form = sniff(path, data, lines)
    return None if form is None else Source(path, form, data, lines)


def load_suite(source: Source | Path, registry: CheckRegistry) -> Suite:
    """The cases of a file of any format but the scenario manifest."""
    if isinstance(source, Path):
        opened = open_source(source)
        if opened is None:
            raise FormatError(source, "holds no skill test cases")
        source = opened
    if source.format == SCENARIOS:
        raise FormatError(source.path, "a scenario manifest: load its scenarios one by one")
    # One file's reads (skills, context files) and regexes share one budget each.
    with read_budget(), pattern_budget():
        return _LOADERS[source.format](source, registry)
