"""upskill's CI scenario manifest: ``.upskill/evals.json`` (Hugging Face's skills repo).

    {"scenarios": [{"id": "hf-cli-smoke", "skills": ["skills/hf-cli"],
                    "tests": "evals/hf-cli/smoke.json",
                    "judge": {"enabled": true, "criteria": ["Uses the modern hf CLI."]}}]}

Paths are relative to the repository root, the parent of ``.upskill/``. Each
scenario is a suite: its tests file's cases (upskill's bare list, ``{"cases": [...]}``
or ``{"tests": [...]}``) against every skill it lists, injected in order. The judge
criteria become one ``judge`` check on every case, ANDed with the case's own checks.
A scenario whose skill directory or tests file is missing fails alone; a manifest
whose structure is wrong fails as a whole.

A skill listed twice in one scenario is injected once (with a warning); a skill or
tests file named by many scenarios is read and parsed once (per version of the
file), however many scenarios name it. Pure code: no pytest import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_skills.checks import CheckRegistry
from pytest_skills.checks.builtin import pattern_budget
from pytest_skills.checks.verify import relative_path
from pytest_skills.discovery import MANIFEST_DIR as DISCOVERY_MANIFEST_DIR
from pytest_skills.formats.case_list import DESCRIPTIVE_KEYS, locate_cases
from pytest_skills.formats.data import Case, FormatError, KeyPath, Skill, Suite
from pytest_skills.formats.files import UnsafeFileError, confined, generation, read_budget
from pytest_skills.formats.loading import read_data
from pytest_skills.formats.reader import CASE_KEYS, FileReader, Source, all_of
from pytest_skills.formats.skill_md import load_skill

FORMAT = "scenarios"
MANIFEST_DIR = DISCOVERY_MANIFEST_DIR
TOP_KEYS = frozenset({"scenarios"})
SCENARIO_KEYS = frozenset({"id", "skills", "tests", "judge"})
JUDGE_KEYS = frozenset({"enabled", "criteria"})
TESTS_LISTS = ("cases", "tests")


@dataclass(frozen=True)
class Scenario:
    id: str
    #: Skill directories, relative to the repository root, injected in this order.
    skills: tuple[str, ...]
    tests: str
    #: What the judge grades on every case (empty when the judge is off).
    criteria: tuple[str, ...]
    #: Where the scenario is in the manifest: ``("scenarios", index)``.
    at: KeyPath
    line: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def sniff(path: Path, data: Any, lines: dict[KeyPath, int]) -> str | None:
    """The format's name when the file lists scenarios, else None."""
    at = locate_cases(path, data, lines, ("scenarios",), SCENARIO_KEYS, bare_list=False)
    return None if at is None else FORMAT


def _paths(reader: FileReader, raw: Any, path: KeyPath, what: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise reader.fail(f"{what} must be a non-empty list of paths", path)
    for index, item in enumerate(items):
        try:
            relative_path(item)
        except ValueError as error:
            raise reader.fail(f"{what}: {error}", (*path, index)) from None
    return tuple(items)


def _criteria(reader: FileReader, raw: Any, path: KeyPath, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise reader.fail(f"{what}: 'judge' must be a mapping with 'criteria'", path)
    reader.metadata(raw, JUDGE_KEYS, path, f"{what}'s judge")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise reader.fail("'enabled' must be true or false", (*path, "enabled"))
    criteria = raw.get("criteria") or []
    if not isinstance(criteria, list) or not all(
        isinstance(c, str) and c.strip() for c in criteria
    ):
        raise reader.fail("'criteria' must be a list of strings", (*path, "criteria"))
    return tuple(criteria) if enabled else ()


def _scenario(reader: FileReader, raw: Any, index: int) -> Scenario:
    at: KeyPath = ("scenarios", index)
    what = f"scenario {index + 1}"
    if not isinstance(raw, Mapping):
        raise reader.fail(f"{what} must be a mapping with 'skills' and 'tests'", at)
    metadata = reader.metadata(raw, SCENARIO_KEYS, at, what)
    tests = raw.get("tests")
    if not isinstance(tests, str):
        raise reader.fail(f"{what} needs 'tests': the path of its test cases file", at)
    return Scenario(
        id=reader.case_id(raw, "id", f"scenario-{index + 1}", at),
        skills=_paths(reader, raw.get("skills"), (*at, "skills"), f"{what}'s 'skills'"),
        tests=_paths(reader, tests, (*at, "tests"), f"{what}'s 'tests'")[0],
        criteria=_criteria(reader, raw.get("judge"), (*at, "judge"), what),
        at=at,
        line=reader.line(at),
        metadata=metadata,
    )


def read_scenarios(source: Source) -> tuple[tuple[Scenario, ...], tuple[str, ...]]:
    """The manifest's scenarios, and the warnings it deserves."""
    reader = FileReader(source.path, source.lines)
    reader.metadata(source.data, TOP_KEYS, (), "the top level")
    raw = source.data.get("scenarios") or []
    if not isinstance(raw, list):
        raise reader.fail("'scenarios' must be a list", ("scenarios",))
    if not raw:
        reader.note("'scenarios' is empty: no cases to collect", ("scenarios",))
    scenarios = tuple(_scenario(reader, item, i) for i, item in enumerate(raw))
    seen: dict[str, int] = {}
    for index, scenario in enumerate(scenarios):
        first = seen.setdefault(scenario.id, index)
        if first != index:
            raise reader.fail(
                f"scenario id {scenario.id!r} is used twice (scenarios {first + 1} "
                f"and {index + 1})",
                (*scenario.at, "id"),
            )
    return scenarios, reader.warnings()


def _judged(reader: FileReader, case: Case, criteria: tuple[str, ...]) -> Case:
    """The case with the scenario's criteria as one more check, graded in one call."""
    listed = "\n".join(f"- {criterion.strip()}" for criterion in criteria)
    rubric = f"The answer meets every one of these criteria:\n{listed}"
    judge = reader.parse({"judge": {"rubric": rubric, "task": case.input}}, ())
    checks = [judge] if case.check is None else [case.check, judge]
    return replace(case, check=all_of(checks, ()))


#: Tests files' data, by the file and its version: scenarios name a handful of files,
#: each many times, and a file is parsed once. A few at a time, for one session.
_tests_data: dict[tuple[Any, ...], tuple[Any, dict[KeyPath, int]] | FormatError] = {}
_TESTS_DATA_KEPT = 4


def load_scenario(source: Source, scenario: Scenario, registry: CheckRegistry) -> Suite:
    """One scenario's cases against its skills; a missing skill or file is an error."""
    manifest = FileReader(source.path, source.lines, registry)
    root = source.path.parent.parent
    with read_budget(), pattern_budget():
        skills = _skills(manifest, scenario, root)
        tests_path = root / scenario.tests
        data, lines = _tests_data_of(manifest, scenario, tests_path)
        reader = FileReader(tests_path, lines, registry)
        at = locate_cases(tests_path, data, lines, TESTS_LISTS, CASE_KEYS, bare_list=True)
        if at is None:
            raise reader.fail(
                f"scenario {scenario.id!r}: no 'cases' (or 'tests') list, nor a list of test cases"
            )
        top = data if isinstance(data, Mapping) else {}
        metadata = reader.metadata(top, {*TESTS_LISTS, *DESCRIPTIVE_KEYS}, (), "the top level")
        graded = bool(scenario.criteria)
        cases = reader.cases(top[at[0]] if at else data, at, graded_elsewhere=graded)
        if scenario.criteria:
            cases = tuple(_judged(reader, case, scenario.criteria) for case in cases)
    return Suite(
        path=tests_path,
        format=FORMAT,
        skills=skills,
        cases=cases,
        warnings=(
            *(f"in {source.path}, {note}" for note in manifest.warnings()),
            *reader.warnings(),
        ),
        metadata={**metadata, "scenario": scenario.id, **scenario.metadata},
    )


def _tests_data_of(
    manifest: FileReader, scenario: Scenario, tests_path: Path
) -> tuple[Any, dict[KeyPath, int]]:
    """The tests file's data and lines, parsed once per version of the file."""
    if not tests_path.is_file():
        raise manifest.fail(
            f"scenario {scenario.id!r}: no tests file {scenario.tests} under "
            f"{manifest.path.parent.parent}",
            (*scenario.at, "tests"),
        )
    try:
        real = confined(tests_path)
        info = os.stat(real)
    except (UnsafeFileError, OSError) as error:
        raise manifest.fail(
            f"scenario {scenario.id!r}: tests file {scenario.tests}: {error}",
            (*scenario.at, "tests"),
        ) from None
    key = (generation(), real, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    parsed = _tests_data.pop(key, None)
    if parsed is None:
        try:
            parsed = read_data(tests_path)
        except FormatError as error:
            parsed = error
    _tests_data[key] = parsed  # last: the most recently used is kept longest
    while len(_tests_data) > _TESTS_DATA_KEPT:
        del _tests_data[next(iter(_tests_data))]
    if isinstance(parsed, FormatError):  # a copy: each scenario reports its own
        raise FormatError(parsed.path, parsed.message, parsed.line)
    return parsed


def _skills(manifest: FileReader, scenario: Scenario, root: Path) -> tuple[Skill, ...]:
    """The scenario's skills in order, each once."""
    skills: dict[int, Skill] = {}  # by identity: a file named by two paths is one Skill
    for index, directory in enumerate(scenario.skills):
        where = (*scenario.at, "skills", index)
        skill_md = root / directory / "SKILL.md"
        if not skill_md.is_file():
            missing = "skill directory" if not skill_md.parent.is_dir() else "SKILL.md in"
            raise manifest.fail(
                f"scenario {scenario.id!r}: no {missing} {directory} under {root}", where
            )
        try:
            loaded = load_skill(skill_md)
            if id(loaded) not in skills:
                skills[id(loaded)] = loaded
            else:
                manifest.note(
                    f"scenario {scenario.id!r} lists the skill {directory} again; "
                    "it is injected once",
                    where,
                )
        except FormatError as error:
            raise manifest.fail(f"scenario {scenario.id!r}: {error}", where) from None
    return tuple(skills.values())
