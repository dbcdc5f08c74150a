"""The Agent Skills eval format: ``evals/evals.json`` beside a skill.

    {"skill_name": "kernel-builder",
     "evals": [{"id": 1, "name": "h100-toml", "prompt": "...", "expected_output": "...",
                "files": ["evals/files/kernel.cu"], "assertions": ["The answer ..."]}]}

The skill is the ``SKILL.md`` in the parent of ``evals/``, else
``skills/<skill_name>/SKILL.md`` there (a plugin's layout). The top level may also be
a bare list of evals. Each eval becomes a case named by its ``name`` (else its
``id``): ``files`` (and ``input_file``) are its context files; every assertion is a
``judge`` check (all must pass) with ``expected_output`` (and an ``expected``
string) as the judge's reference; with no assertions, the judge checks the answer
against the reference. Assertions are strings or objects whose ``description``
(or ``text``), ``expected`` and ``name`` the judge reads. skill-creator's
``expectations`` and ``expected_behaviors`` are accepted for ``assertions``; an
``expected`` mapping holds check kinds, like a native case's ``expect``. Pure code:
no pytest import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_skills.checks import Check, CheckRegistry
from pytest_skills.checks.verify import relative_path
from pytest_skills.formats.case_list import locate_cases
from pytest_skills.formats.data import Case, KeyPath, Suite, plain
from pytest_skills.formats.files import read_text
from pytest_skills.formats.reader import FileReader, Source, all_of
from pytest_skills.formats.skill_md import load_skill

FORMAT = "agentskills"
TOP_KEYS = frozenset({"skill_name", "evals", "$schema"})
#: Names the assertions go by: the spec's, skill-creator's, and a plugin layout's.
ASSERTION_LISTS = ("assertions", "expectations", "expected_behaviors")
EVAL_KEYS = frozenset(
    {"id", "name", "prompt", "files", "input_file", "expected_output", "expected", *ASSERTION_LISTS}
)
ASSERTION_KEYS = frozenset({"name", "description", "text", "expected"})
#: The judge's rubric for an eval that only describes its expected output.
REFERENCE_RUBRIC = (
    "The answer accomplishes what the reference describes: it has the "
    "substance a successful answer needs, in any wording."
)


def is_evals_file(path: Path) -> bool:
    """An Agent Skills ``evals/evals.json``."""
    return path.name == "evals.json" and path.parent.name == "evals"


def _where(path: Path, data: Any, lines: dict[KeyPath, int]) -> KeyPath | None:
    return locate_cases(path, data, lines, ("evals",), EVAL_KEYS, bare_list=True)


def sniff(path: Path, data: Any, lines: dict[KeyPath, int]) -> str | None:
    """The format's name when the file holds evals, else None."""
    return None if _where(path, data, lines) is None else FORMAT


def _text(reader: FileReader, raw: Any, path: KeyPath, what: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise reader.fail(f"{what} must be a string", path)
    return raw.strip() or None


def _rubric(reader: FileReader, item: Any, path: KeyPath, what: str) -> str:
    """What the judge grades for one assertion: a string, or an object's texts."""
    if isinstance(item, str) and item.strip():
        return item
    if not isinstance(item, Mapping):
        raise reader.fail(f"{what} must be a non-empty string or an object", path)
    reader.metadata(item, ASSERTION_KEYS, path, what)
    texts = {
        key: str(item[key]).strip()
        for key in ("name", "description", "text", "expected")
        if isinstance(item.get(key), (str, int, float)) and str(item[key]).strip()
    }
    said = [texts[key] for key in ("description", "text") if key in texts]
    if "expected" in texts:
        said.append(f"Expected: {texts['expected']}")
    if not said and "name" in texts:
        said.append(texts["name"])
    if not said:
        raise reader.fail(
            f"{what} has no 'description', 'text' or 'expected' for the judge to grade", path
        )
    return "\n".join(said)


def _rubrics(reader: FileReader, raw: Mapping[str, Any], path: KeyPath) -> list[str]:
    given = [key for key in ASSERTION_LISTS if raw.get(key) is not None]
    if len(given) > 1:
        raise reader.fail(
            f"give one of {', '.join(map(repr, ASSERTION_LISTS))}, not both {given[0]!r} "
            f"and {given[1]!r}",
            (*path, given[1]),
        )
    if not given:
        return []
    key = given[0]
    items = raw[key]
    if not isinstance(items, list):
        raise reader.fail(f"'{key}' must be a list of strings or objects", (*path, key))
    return [
        _rubric(reader, item, (*path, key, i), f"'{key}' entry {i + 1}")
        for i, item in enumerate(items)
    ]


def _resolve(name: str, bases: tuple[Path, ...]) -> tuple[Path, str | None] | None:
    """The file ``name`` names, and how it was found when not as written.

    Authors write paths relative to the skill directory (the spec), to the directory
    holding ``evals/`` or to ``evals/`` itself; some wrote them from a directory above
    the repository (``repo/evals/x``): then the longest tail of the path that exists
    under one of the bases is taken.
    """
    for base in bases:
        if (base / name).is_file():
            return base / name, None
    parts = PurePosixPath(name.replace("\\", "/")).parts
    for start in range(1, len(parts)):
        tail = PurePosixPath(*parts[start:])
        for base in bases:
            if (base / tail).is_file():
                return base / tail, str(tail)
    return None


def _files(
    reader: FileReader, raw: Mapping[str, Any], path: KeyPath, bases: tuple[Path, ...]
) -> tuple[tuple[str, str], ...]:
    listed = raw.get("files")
    if listed is not None and not isinstance(listed, list):
        raise reader.fail("'files' must be a list of file paths", (*path, "files"))
    named = [(name, (*path, "files", i)) for i, name in enumerate(listed or [])]
    if raw.get("input_file") is not None:
        named.append((raw["input_file"], (*path, "input_file")))
    files = []
    read: set[Path] = set()
    for name, where in named:
        try:
            relative_path(name)
        except ValueError as error:
            raise reader.fail(f"file {error}", where) from None
        found = _resolve(name, bases)
        if found is None:
            raise reader.fail(
                f"no file {name} in the skill directory {bases[0]} ('files' are relative "
                f"to it; {', '.join(str(b) for b in bases[1:])} were searched too)",
                where,
            )
        target, tail = found
        if tail is not None:
            reader.note(f"file {name!r} is not where it says; read {tail} instead", where)
        if target.resolve() in read:  # named twice: in the prompt once
            reader.note(f"file {name!r} is listed again; it is given once", where)
            continue
        read.add(target.resolve())
        try:
            files.append((name, read_text(target, "context file")))
        except UnicodeDecodeError:
            raise reader.fail(
                f"{name} is not UTF-8 text; only text files can be given to a model as context",
                where,
            ) from None
        except (OSError, ValueError) as error:  # ValueError: a symlink out, too large, a FIFO
            raise reader.fail(f"cannot read {name}: {error}", where) from None
    return tuple(files)


def _checks(
    reader: FileReader, raw: Mapping[str, Any], path: KeyPath, prompt: str, what: str
) -> Check:
    expected = raw.get("expected")
    checks = []
    if isinstance(expected, Mapping):  # check kinds, as under a native case's 'expect'
        checks.append(reader.parse(expected, (*path, "expected")))
        expected = None
    references = [
        _text(reader, raw.get("expected_output"), (*path, "expected_output"), "'expected_output'"),
        _text(reader, expected, (*path, "expected"), "'expected' (a reference or check kinds)"),
    ]
    reference = "\n\n".join(text for text in references if text) or None
    rubrics = _rubrics(reader, raw, path)
    if not rubrics and reference:
        rubrics = [REFERENCE_RUBRIC]
    for rubric in rubrics:
        value = {"rubric": rubric, "task": prompt}
        if reference:
            value["reference"] = reference
        checks.append(reader.parse({"judge": value}, path))
    check = all_of(checks, path)
    if check is None:
        raise reader.fail(
            f"{what} has no 'assertions', no 'expected_output' and no 'expected': nothing to grade",
            path,
        )
    return check


def _case(reader: FileReader, raw: Any, index: int, path: KeyPath, bases: tuple[Path, ...]) -> Case:
    what = f"eval {index + 1}"
    if not isinstance(raw, Mapping):
        raise reader.fail(f"{what} must be a mapping with 'prompt' and 'assertions'", path)
    metadata = reader.metadata(raw, EVAL_KEYS, path, what)
    prompt = reader.prompt_text(raw, "prompt", what, path)
    eval_id = reader.case_id(raw, "id", f"eval-{index + 1}", path)
    if "name" in raw and "id" in raw:
        metadata["id"] = plain(raw["id"])  # the case is named by its name: keep the id
    # Object assertions carry names and types the judge does not read: keep them.
    for key in ASSERTION_LISTS:
        if isinstance(raw.get(key), list) and any(isinstance(a, Mapping) for a in raw[key]):
            metadata[key] = plain(raw[key])
    return Case(
        id=reader.case_id(raw, "name", eval_id, path),
        input=prompt,
        check=_checks(reader, raw, path, prompt, what),
        context_files=_files(reader, raw, path, bases),
        line=reader.line(path),
        metadata=metadata,
    )


def _skill_md(reader: FileReader, name: str | None) -> Path:
    project = reader.path.parent.parent
    beside = project / "SKILL.md"
    if beside.is_file():
        return beside
    if name:
        if Path(name).name != name or name in (".", ".."):
            raise reader.fail(f"'skill_name' {name!r} must be a name, not a path", ("skill_name",))
        nested = project / "skills" / name / "SKILL.md"
        if nested.is_file():
            return nested
        raise reader.fail(
            f"no SKILL.md in the skill directory {project} (the parent of evals/), "
            f"nor at {nested} (skills/<skill_name>/)"
        )
    raise reader.fail(f"no SKILL.md in the skill directory {project} (the parent of evals/)")


def _unique_names(cases: list[Case], named: list[bool], reader: FileReader) -> list[Case]:
    """A name used twice becomes ``name-id`` (names are labels; ids identify evals)."""
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.id] = counts.get(case.id, 0) + 1
    renamed = []
    for index, (case, by_name) in enumerate(zip(cases, named, strict=True)):
        if by_name and counts[case.id] > 1:
            new = f"{case.id}-{case.metadata.get('id', index + 1)}"
            reader.note(f"eval {index + 1}: name {case.id!r} is used twice; its id is {new}")
            case = replace(case, id=new)
        renamed.append(case)
    return renamed


def load_evals(source: Source, registry: CheckRegistry) -> Suite:
    reader = FileReader(source.path, source.lines, registry)
    at = _where(source.path, source.data, source.lines)
    assert at is not None  # sniffed before
    top = source.data if isinstance(source.data, Mapping) else {}
    metadata = reader.metadata(top, TOP_KEYS, (), "the top level")
    raw = top.get("evals") if at else source.data
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise reader.fail("'evals' must be a list of evals", at)
    name = _text(reader, top.get("skill_name"), ("skill_name",), "'skill_name'")
    if not raw:
        reader.note("'evals' is empty: no cases to collect", at)
        return Suite(source.path, FORMAT, (), (), warnings=reader.warnings(), metadata=metadata)
    skill_md = _skill_md(reader, name)
    evals_dir = source.path.parent
    bases = tuple(dict.fromkeys((skill_md.parent, evals_dir.parent, evals_dir)))
    cases = [_case(reader, item, i, (*at, i), bases) for i, item in enumerate(raw)]
    named = [isinstance(item, Mapping) and item.get("name") is not None for item in raw]
    cases = _unique_names(cases, named, reader)
    reader.unique_ids(tuple(cases), at, "eval")
    skill = load_skill(skill_md)
    if name and name != skill.name:
        reader.note(f"evals.json names the skill {name!r}, its SKILL.md {skill.name!r}")
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
