"""The Agent Skills eval format: ``evals/evals.json`` beside a skill.

    {"skill_name": "kernel-builder",
     "evals": [{"id": 1, "name": "h100-toml", "prompt": "...", "expected_output": "...",
                "files": ["evals/files/kernel.cu"], "assertions": ["The answer ..."]}]}

The cases are under ``evals`` (``test_cases`` and ``cases`` too), or the top level is
a bare list of them. The skill is the ``SKILL.md`` in the parent of ``evals/``, else
``skills/<skill_name>/SKILL.md`` there (a plugin's layout), else
``<skill_name>/SKILL.md`` there. Each eval becomes a case named by its ``name`` (or
``eval_name``), else its ``id``: ``files`` (and ``input_file``; a directory means the
files in it) are its context files (``eval_files.py``); its criteria
(``criteria.py``: assertions under any of their names, failures, scorers) are checks
that must all pass, deterministic where they are written so, else ``judge`` checks with
``expected_output`` (and an ``expected`` string) as the judge's reference; with no
criteria, the judge checks the answer against the reference. An ``expected`` (or
``expect``) mapping holds check kinds, like a native case's ``expect``. Pure code: no
pytest import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_skills.checks import Check, CheckRegistry
from pytest_skills.formats.case_list import locate_cases
from pytest_skills.formats.criteria import CRITERIA_KEYS, Criteria, read_criteria
from pytest_skills.formats.data import Case, KeyPath, Suite, plain
from pytest_skills.formats.eval_files import context_files
from pytest_skills.formats.reader import FileReader, Source, all_of
from pytest_skills.formats.skill_md import load_skill

FORMAT = "agentskills"
#: Where a file keeps its evals: the spec's name, then others found in the wild.
LIST_KEYS = ("evals", "test_cases", "cases")
TOP_KEYS = frozenset({"skill_name", "$schema", *LIST_KEYS})
#: What names an eval: the spec's ``name``, and ``eval_name``.
NAME_KEYS = ("name", "eval_name")
EVAL_KEYS = frozenset(
    {"id", *NAME_KEYS, "prompt", "files", "input_file", "expected_output", "expected"}
    | CRITERIA_KEYS
)
#: The judge's rubric for an eval that only describes its expected output.
REFERENCE_RUBRIC = (
    "The answer accomplishes what the reference describes: it has the "
    "substance a successful answer needs, in any wording."
)


def _where(path: Path, data: Any, lines: dict[KeyPath, int]) -> KeyPath | None:
    return locate_cases(path, data, lines, LIST_KEYS, EVAL_KEYS, bare_list=True)


def sniff(path: Path, data: Any, lines: dict[KeyPath, int]) -> str | None:
    """The format's name when the file holds evals, else None."""
    return None if _where(path, data, lines) is None else FORMAT


def _text(reader: FileReader, raw: Any, path: KeyPath, what: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise reader.fail(f"{what} must be a string", path)
    return raw.strip() or None


def _checks(
    reader: FileReader,
    raw: Mapping[str, Any],
    path: KeyPath,
    prompt: str,
    what: str,
) -> tuple[Check | None, Criteria]:
    """The eval's check (None when only ungradable scorers remain) and its criteria."""
    checks = []
    expected = raw.get("expected")
    for key in ("expected", "expect"):  # check kinds, as under a native case's 'expect'
        if isinstance(raw.get(key), Mapping):
            checks.append(reader.parse(raw[key], (*path, key)))
            expected = None if key == "expected" else expected
    references = [
        _text(reader, raw.get("expected_output"), (*path, "expected_output"), "'expected_output'"),
        _text(reader, expected, (*path, "expected"), "'expected' (a reference or check kinds)"),
    ]
    reference = "\n\n".join(text for text in references if text) or None
    criteria = read_criteria(reader, raw, path)
    entries = list(criteria.entries)
    if not criteria.given and reference:
        entries = [(None, REFERENCE_RUBRIC)]
    for check, rubric in entries:
        if check is not None:
            checks.append(check)
            continue
        value = {"rubric": rubric, "task": prompt}
        if reference:
            value["reference"] = reference
        checks.append(reader.parse({"judge": value}, path))
    check = all_of(checks, path)
    if check is None and not criteria.ungradable:
        raise reader.fail(
            f"{what} has no 'assertions', no 'expected_output' and no 'expected': nothing to grade",
            path,
        )
    return check, criteria


def _case(reader: FileReader, raw: Any, index: int, path: KeyPath, bases: tuple[Path, ...]) -> Case:
    what = f"eval {index + 1}"
    if not isinstance(raw, Mapping):
        raise reader.fail(f"{what} must be a mapping with 'prompt' and 'assertions'", path)
    metadata = reader.metadata(raw, EVAL_KEYS, path, what)
    prompt = reader.prompt_text(raw, "prompt", what, path)
    eval_id = reader.case_id(raw, "id", f"eval-{index + 1}", path)
    name_key = reader.one_of(raw, NAME_KEYS, path)
    if name_key in raw and "id" in raw:
        metadata["id"] = plain(raw["id"])  # the case is named by its name: keep the id
    case_id = reader.case_id(raw, name_key, eval_id, path)
    # Object criteria carry names and types no check reads: keep them for the report.
    for key in CRITERIA_KEYS:
        if isinstance(raw.get(key), list) and any(isinstance(a, Mapping) for a in raw[key]):
            metadata[key] = plain(raw[key])
    check, criteria = _checks(reader, raw, path, prompt, what)
    label = f"{what} ({case_id!r})"
    skip = None
    if criteria.ungradable:
        left_out = ", ".join(criteria.ungradable)
        if check is None:
            skip = f"{left_out}: not a scorer type pytest-skills grades (regex, llm_judge)"
        reader.note(f"{label}: {left_out} is not graded here (known: regex, llm_judge)", path)
    return Case(
        id=case_id,
        input=prompt,
        check=check,
        context_files=context_files(reader, raw, path, bases, label),
        line=reader.line(path),
        skip=skip,
        metadata=metadata,
    )


def skill_md_for(reader: FileReader, name: str | None) -> Path:
    """The skill a file in ``evals/`` tests: the ``SKILL.md`` beside ``evals/``; else,
    named by ``skill_name``, in ``skills/<name>/`` or ``<name>/`` there; else, with no
    name, the only skill in ``skills/*/`` there."""
    project = reader.path.parent.parent
    places = [project / "SKILL.md"]
    if name:
        if Path(name).name != name or name in (".", ".."):
            raise reader.fail(f"'skill_name' {name!r} must be a name, not a path", ("skill_name",))
        places += [project / "skills" / name / "SKILL.md", project / name / "SKILL.md"]
    found = next((place for place in places if place.is_file()), None)
    if found is not None:
        return found
    if not name:
        only = sorted((project / "skills").glob("*/SKILL.md"))
        if len(only) == 1:
            return only[0]
        raise reader.fail(
            f"no SKILL.md in the skill directory {project} (the parent of evals/) and "
            f"{len(only) or 'no'} skills in {project / 'skills'}; name the skill with "
            "'skill_name' when it is in skills/<name>/ or <name>/"
        )
    raise reader.fail(
        f"no SKILL.md in the skill directory {project} (the parent of evals/), "
        f"nor at {places[1]} (skills/<skill_name>/) or {places[2]} (<skill_name>/)",
        ("skill_name",),
    )


def _unique_names(
    cases: list[Case], named: list[bool], reader: FileReader, at: KeyPath
) -> list[Case]:
    """A name used twice becomes ``name-id`` (names are labels; ids identify evals)."""
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.id] = counts.get(case.id, 0) + 1
    renamed = []
    for index, (case, by_name) in enumerate(zip(cases, named, strict=True)):
        if by_name and counts[case.id] > 1:
            new = f"{case.id}-{case.metadata.get('id', index + 1)}"
            reader.note(
                f"eval {index + 1} ({case.id!r}): its name is used twice; its id is {new}",
                (*at, index),
            )
            case = replace(case, id=new)
        renamed.append(case)
    return renamed


def load_evals(source: Source, registry: CheckRegistry) -> Suite:
    reader = FileReader(source.path, source.lines, registry)
    at = _where(source.path, source.data, source.lines)
    assert at is not None  # sniffed before
    top = source.data if isinstance(source.data, Mapping) else {}
    metadata = reader.metadata(top, TOP_KEYS, (), "the top level")
    raw = top.get(at[0]) if at else source.data
    listed = f"'{at[0]}'" if at else "the list"
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise reader.fail(f"{listed} must be a list of evals", at)
    name = _text(reader, top.get("skill_name"), ("skill_name",), "'skill_name'")
    if not raw:
        reader.note(f"{listed} is empty: no cases to collect", at)
        return Suite(source.path, FORMAT, (), (), warnings=reader.warnings(), metadata=metadata)
    skill_md = skill_md_for(reader, name)
    evals_dir = source.path.parent
    bases = tuple(dict.fromkeys((skill_md.parent, evals_dir.parent, evals_dir)))
    cases = [_case(reader, item, i, (*at, i), bases) for i, item in enumerate(raw)]
    named = [
        isinstance(item, Mapping) and any(item.get(key) is not None for key in NAME_KEYS)
        for item in raw
    ]
    cases = _unique_names(cases, named, reader, at)
    reader.unique_ids(tuple(cases), at, "eval")
    skill = load_skill(skill_md)
    if name and name != skill.name:
        reader.note(
            f"evals.json names the skill {name!r}, its SKILL.md {skill.name!r}", ("skill_name",)
        )
    if name is not None:
        metadata["skill_name"] = name
    return Suite(
        path=source.path,
        format=FORMAT,
        skills=(skill,),
        cases=tuple(cases),
        warnings=reader.warnings(),
        metadata=metadata,
    )
