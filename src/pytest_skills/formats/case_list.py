"""Files that keep their cases in one list: the native, article and upskill forms.

:func:`locate_cases` says where a file's cases are, or that it holds none (an
unrelated file with the name is not collected); :func:`read_case_list` reads them.
Pure code: no pytest.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pytest_skills.checks import CheckRegistry
from pytest_skills.formats.data import KeyPath, Suite, plain
from pytest_skills.formats.keys import near_miss
from pytest_skills.formats.reader import FileReader, Source
from pytest_skills.formats.skill_md import load_skill

#: Top-level keys that describe a file: read into the report's metadata.
DESCRIPTIVE_KEYS = frozenset({"metadata", "name", "description"})


def locate_cases(
    path: Path,
    data: Any,
    lines: dict[KeyPath, int],
    list_keys: tuple[str, ...],
    case_keys: Collection[str],
    *,
    bare_list: bool,
) -> KeyPath | None:
    """Where a file keeps its cases: ``(key,)`` for a list under one of ``list_keys``,
    ``()`` for a bare list of cases (when the format has one), None when the file holds
    no cases at all (an unrelated file that happens to have the name).

    A near miss of a list key (``case``) or a case's own keys at the top level are
    errors: the file meant to hold cases.
    """
    reader = FileReader(path, lines)
    if isinstance(data, list):
        looks_like_cases = bool(data) and all(
            isinstance(item, Mapping) and set(map(str, item)) & set(case_keys) for item in data
        )
        return () if bare_list and looks_like_cases else None
    if not isinstance(data, Mapping):
        return None
    present = [key for key in list_keys if key in data]
    if len(present) > 1:
        raise reader.fail(f"give either {present[0]!r} or {present[1]!r}, not both", (present[1],))
    if present:
        return (present[0],)
    lists = " or ".join(repr(key) for key in list_keys)
    for key in map(str, data):
        meant = near_miss(key, list_keys)
        if meant is not None:
            raise reader.fail(
                f"unknown key {key!r} in the top level; did you mean {meant!r}?", (key,)
            )
        if key in ("expect", "expected") or near_miss(key, ("expect", "expected")):
            raise reader.fail(
                f"{key!r} at the top level: a case's checks belong in a case, in a {lists} list",
                (key,),
            )
    return None


def read_case_list(
    source: Source, registry: CheckRegistry, known: frozenset[str], at: KeyPath
) -> Suite:
    """A file of the native, article or upskill form whose cases are at ``at``.

    ``known`` are the top-level keys the format reads; the rest are metadata.
    """
    reader = FileReader(source.path, source.lines, registry)
    top = source.data if isinstance(source.data, Mapping) else {}
    metadata = reader.metadata(top, known, (), "the top level")
    # Known keys that describe the file (upskill's own "metadata" among them) go to
    # the report too; the list, the skill and the defaults are read.
    metadata.update((k, plain(v)) for k, v in top.items() if k in DESCRIPTIVE_KEYS)
    defaults = reader.defaults(top)
    cases = reader.cases(top[at[0]] if at else source.data, at)
    skills = (load_skill(reader.skill_path(top)),) if cases else ()
    return Suite(
        path=source.path,
        format=source.format,
        skills=skills,
        cases=cases,
        defaults=defaults,
        warnings=reader.warnings(),
        metadata=metadata,
    )
