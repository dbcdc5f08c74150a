"""The Agent Skills eval format: ``evals/evals.json`` inside a skill directory.

    {"skill_name": "kernel-builder",
     "evals": [{"id": 1, "prompt": "...", "expected_output": "...",
                "files": ["evals/files/kernel.cu"], "assertions": ["The answer ..."]}]}

The skill is the ``SKILL.md`` in the parent of ``evals/``. Each eval becomes a case:
``files`` (paths relative to the skill directory) are its context files, every
assertion is a ``judge`` check (all must pass) with ``expected_output`` as the judge's
reference; with no assertions, the judge checks the answer against ``expected_output``.
``expectations`` (skill-creator's name) is accepted for ``assertions``. Pure code: no
pytest import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_skills.checks import CheckRegistry, CheckSpecError
from pytest_skills.checks.verify import relative_path
from pytest_skills.formats.data import Case, KeyPath, Suite
from pytest_skills.formats.reader import FileReader, read_data
from pytest_skills.formats.skill_md import load_skill

FORMAT = "agentskills"
TOP_KEYS = frozenset({"skill_name", "evals", "$schema"})
EVAL_KEYS = frozenset({"id", "prompt", "expected_output", "files", "assertions", "expectations"})
#: The judge's rubric for an eval that only describes its expected output.
REFERENCE_RUBRIC = (
    "The answer accomplishes what the reference describes: it has the "
    "substance a successful answer needs, in any wording."
)


def _strings(parser: FileReader, raw: Any, path: KeyPath, what: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise parser.fail(f"'{what}' must be a list of strings", path)
    for index, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            raise parser.fail(
                f"'{what}' entry {index + 1} must be a non-empty string", (*path, index)
            )
    return list(raw)


def _files(
    parser: FileReader, raw: Any, path: KeyPath, skill_dir: Path
) -> tuple[tuple[str, str], ...]:
    files = []
    for index, name in enumerate(_strings(parser, raw, path, "files")):
        where = (*path, index)
        try:
            relative_path(name)
        except ValueError as error:
            raise parser.fail(f"file {error}", where) from None
        target = skill_dir / name
        if not target.is_file():
            raise parser.fail(
                f"no file {name} in the skill directory {skill_dir} ('files' are relative to it)",
                where,
            )
        try:
            files.append((name, target.read_text(encoding="utf-8-sig")))
        except UnicodeDecodeError:
            raise parser.fail(
                f"{name} is not UTF-8 text; only text files can be given to a model as context",
                where,
            ) from None
        except OSError as error:
            raise parser.fail(f"cannot read {name}: {error}", where) from None
    return tuple(files)


def _case(parser: FileReader, raw: Any, index: int, path: KeyPath, skill_dir: Path) -> Case:
    what = f"eval {index + 1}"
    if not isinstance(raw, Mapping):
        raise parser.fail(f"{what} must be a mapping with 'prompt' and 'assertions'", path)
    parser.check_keys(raw, EVAL_KEYS, path, what)
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise parser.fail(f"{what} needs a non-empty 'prompt' string", path)
    case_id = raw.get("id", f"eval-{index + 1}")
    if isinstance(case_id, bool) or not isinstance(case_id, (str, int)) or not str(case_id).strip():
        raise parser.fail("'id' must be a number or a non-empty string", (*path, "id"))
    if "::" in str(case_id):
        raise parser.fail(f"'id' {case_id!r} must not contain '::'", (*path, "id"))
    expected = raw.get("expected_output")
    if expected is not None and not isinstance(expected, str):
        raise parser.fail("'expected_output' must be a string", (*path, "expected_output"))
    if "assertions" in raw and "expectations" in raw:
        raise parser.fail(
            "give either 'assertions' or 'expectations', not both", (*path, "expectations")
        )
    key = "expectations" if "expectations" in raw else "assertions"
    assertions = _strings(parser, raw.get(key), (*path, key), key)
    if not assertions and not (expected or "").strip():
        raise parser.fail(f"{what} has no '{key}' and no 'expected_output': nothing to grade", path)
    judges = []
    for rubric in assertions or [REFERENCE_RUBRIC]:
        value = {"rubric": rubric, "task": prompt}
        if expected and expected.strip():
            value["reference"] = expected
        judges.append({"judge": value})
    expect = judges[0] if len(judges) == 1 else {"all": judges}
    where = (*path, key) if assertions else path
    try:
        check = parser.registry.parse(expect, where)
    except CheckSpecError as error:
        raise parser.fail(str(error), where) from None
    return Case(
        id=str(case_id).strip(),
        input=prompt,
        check=check,
        context_files=_files(parser, raw.get("files"), (*path, "files"), skill_dir),
        line=parser.line(path),
    )


def is_evals_file(path: Path) -> bool:
    """An Agent Skills ``evals/evals.json``."""
    return path.name == "evals.json" and path.parent.name == "evals"


def load_evals(path: Path, registry: CheckRegistry) -> Suite:
    data, lines = read_data(path)
    parser = FileReader(path, lines, registry)
    if not isinstance(data, Mapping):
        raise parser.fail("the top level must be a mapping with an 'evals' list")
    parser.check_keys(data, TOP_KEYS, (), "the top level")
    if "evals" not in data:
        raise parser.fail("no 'evals' list found")
    raw = data["evals"]
    if not isinstance(raw, list):
        raise parser.fail("'evals' must be a list of evals", ("evals",))
    if not raw:
        raise parser.fail("'evals' is empty; add at least one eval", ("evals",))
    name = data.get("skill_name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise parser.fail("'skill_name' must be the skill's name", ("skill_name",))
    skill_dir = path.parent.parent
    skill_md = skill_dir / "SKILL.md"
    if not skill_md.is_file():
        raise parser.fail(f"no SKILL.md in the skill directory {skill_dir} (the parent of evals/)")
    cases = tuple(_case(parser, item, i, ("evals", i), skill_dir) for i, item in enumerate(raw))
    parser.unique_ids(cases, "evals", "eval")
    skill = load_skill(skill_md)
    if name and name != skill.name:
        skill = replace(
            skill,
            warnings=(
                *skill.warnings,
                f"evals.json names the skill {name!r}, its SKILL.md {skill.name!r}",
            ),
        )
    return Suite(path=path, format=FORMAT, skill=skill, cases=cases)
