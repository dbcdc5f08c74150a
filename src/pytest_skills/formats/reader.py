"""The reader every format shares: data with the line of every key, and the case schema.

:func:`read_data` (``loading.py``) parses JSON or YAML within limits and maps key paths
to lines; :class:`FileReader` turns raw mappings into :class:`Case` objects and raises
:class:`FormatError` naming the file, the line and what to do. Pure code: no pytest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_skills.checks import Check, CheckRegistry, CheckSpecError
from pytest_skills.checks.verify import (
    DEFAULT_OUTPUT_FILE,
    Verification,
    parse_verifier,
    relative_path,
)
from pytest_skills.formats.data import Case, FormatError, KeyPath, Suite
from pytest_skills.formats.loading import read_data
from pytest_skills.formats.skill_md import load_skill

SAMPLING_KEYS = frozenset({"temperature", "max_tokens", "seed"})
#: No model answers more tokens than this; a larger value is a typo (1e20).
MAX_TOKENS_LIMIT = 1_000_000
CASE_KEYS = frozenset(
    {
        "id",
        "input",
        "expected",
        "expect",
        "context",
        "description",
        "verifiers",
        "output_file",
        "xfail",
    }
    | SAMPLING_KEYS
)


class FileReader:
    """Reads one file's raw data into cases; every error names the file and line."""

    def __init__(self, path: Path, lines: dict[KeyPath, int], registry: CheckRegistry):
        self.path = path
        self.registry = registry
        self.lines = lines

    def line(self, path: KeyPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def fail(self, message: str, path: KeyPath = ()) -> FormatError:
        return FormatError(self.path, message, self.line(path))

    def check_keys(
        self, data: Mapping[str, Any], allowed: frozenset[str], path: KeyPath, what: str
    ):
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r} in {what}; allowed: {', '.join(sorted(allowed))}",
                    (*path, str(key)),
                )

    def sampling(self, data: Mapping[str, Any], path: KeyPath) -> dict[str, Any]:
        values = {k: data[k] for k in SAMPLING_KEYS if k in data}
        for key, value in values.items():
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
                key == "seed" and value is None
            )
            if not ok or (key == "max_tokens" and (not isinstance(value, int) or value < 1)):
                raise self.fail(
                    f"{key} must be a number (max_tokens a positive integer)", (*path, key)
                )
            if value is not None and not math.isfinite(value):
                raise self.fail(f"{key} must be a finite number, not {value!r}", (*path, key))
            if key == "max_tokens" and value > MAX_TOKENS_LIMIT:
                raise self.fail(
                    f"max_tokens {value:,} is more than any model answers; give at most "
                    f"{MAX_TOKENS_LIMIT:,}",
                    (*path, key),
                )
            if key == "temperature" and value < 0:
                raise self.fail("temperature must not be negative", (*path, key))
        return values

    def defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        raw = data.get("defaults", {})
        if not isinstance(raw, Mapping):
            raise self.fail("'defaults' must be a mapping, e.g. {temperature: 0}", ("defaults",))
        self.check_keys(raw, SAMPLING_KEYS, ("defaults",), "defaults")
        return self.sampling(raw, ("defaults",))

    def context_files(self, raw: Any, path: KeyPath) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, Mapping) or set(raw) - {"files"}:
            raise self.fail("'context' must be a mapping with 'files: {name: content}'", path)
        files = raw.get("files") or {}
        if not isinstance(files, Mapping) or not all(isinstance(v, str) for v in files.values()):
            raise self.fail("'context.files' must map file names to their text", (*path, "files"))
        return tuple((str(name), content) for name, content in files.items())

    def case(self, raw: Any, index: int, path: KeyPath) -> Case:
        if not isinstance(raw, Mapping):
            raise self.fail(f"case {index + 1} must be a mapping with 'input' and 'expect'", path)
        self.check_keys(raw, CASE_KEYS, path, f"case {index + 1}")
        text = raw.get("input")
        if not isinstance(text, str) or not text.strip():
            raise self.fail(f"case {index + 1} needs a non-empty 'input' string", path)
        if "expect" in raw and "expected" in raw:
            raise self.fail("give either 'expect' or 'expected', not both", (*path, "expected"))
        key = "expect" if "expect" in raw else "expected"
        if key not in raw:
            raise self.fail(f"case {index + 1} needs an 'expect' mapping of checks", path)
        try:
            check = self.registry.parse(raw[key], (*path, key))
        except CheckSpecError as error:
            raise self.fail(str(error), error.path or (*path, key)) from None
        case_id = raw.get("id", f"case-{index + 1}")
        if (
            not isinstance(case_id, (str, int))
            or isinstance(case_id, bool)
            or not str(case_id).strip()
        ):
            raise self.fail("'id' must be a non-empty string", (*path, "id"))
        if "::" in str(case_id):
            # pytest splits node ids on '::': such an item could never be selected by id.
            raise self.fail(f"'id' {case_id!r} must not contain '::'", (*path, "id"))
        verifiers = raw.get("verifiers") or []
        if not isinstance(verifiers, list) or not all(isinstance(v, Mapping) for v in verifiers):
            raise self.fail("'verifiers' must be a list of mappings", (*path, "verifiers"))
        output_file = raw.get("output_file")
        if output_file is not None and not isinstance(output_file, str):
            raise self.fail("'output_file' must be a file name", (*path, "output_file"))
        xfail = raw.get("xfail")
        if xfail is not None and (not isinstance(xfail, str) or not xfail.strip()):
            raise self.fail(
                "'xfail' takes the reason the case is expected to fail", (*path, "xfail")
            )
        files = self.context_files(raw.get("context"), (*path, "context"))
        if verifiers:
            check = self.verified(check, verifiers, output_file, files, path)
        return Case(
            id=str(case_id).strip(),
            input=text,
            check=check,
            context_files=files,
            sampling=self.sampling(raw, path),
            line=self.line(path),
            verifiers=tuple(dict(v) for v in verifiers),
            output_file=output_file,
            xfail=xfail,
        )

    def verified(
        self,
        check: Check,
        verifiers: list[Mapping[str, Any]],
        output_file: str | None,
        files: tuple[tuple[str, str], ...],
        path: KeyPath,
    ) -> Check:
        """upskill's verifiers become one ``verify`` check, ANDed with ``expected``."""
        parsed = []
        for index, raw in enumerate(verifiers):
            try:
                parsed.append(parse_verifier(raw))
            except ValueError as error:
                raise self.fail(
                    f"verifier {index + 1}: {error}", (*path, "verifiers", index)
                ) from None
        try:
            target = relative_path(output_file or DEFAULT_OUTPUT_FILE)
        except ValueError as error:
            raise self.fail(f"'output_file': {error}", (*path, "output_file")) from None
        for name, _ in files:
            try:
                relative_path(name)
            except ValueError as error:
                raise self.fail(
                    f"context file: {error} (verifiers write it to a workspace)",
                    (*path, "context", "files", name),
                ) from None
        value = Verification(tuple(parsed), target, files)
        try:
            verify = self.registry.parse({"verify": value}, (*path, "verifiers"))
        except CheckSpecError as error:
            raise self.fail(str(error), (*path, "verifiers")) from None
        return Check("all", (check, verify), path)

    def cases(self, raw: Any, key: str) -> tuple[Case, ...]:
        if not isinstance(raw, list):
            raise self.fail(f"'{key}' must be a list of cases", (key,))
        if not raw:
            raise self.fail(f"'{key}' is empty; add at least one case", (key,))
        cases = tuple(self.case(item, i, (key, i)) for i, item in enumerate(raw))
        self.unique_ids(cases, key, "case")
        return cases

    def unique_ids(self, cases: tuple[Case, ...], key: str, noun: str) -> None:
        """Fail on the first case id used twice in the list under ``key``."""
        seen: dict[str, int] = {}
        for i, case in enumerate(cases):
            first = seen.setdefault(case.id, i)
            if first != i:
                raise self.fail(
                    f"{noun} id {case.id!r} is used twice ({noun}s {first + 1} and {i + 1})",
                    (key, i, "id"),
                )

    def skill_path(self, data: Mapping[str, Any]) -> Path:
        named = data.get("skill", "SKILL.md")
        if not isinstance(named, str) or not named.strip():
            raise self.fail("'skill' must be a path to a SKILL.md", ("skill",))
        target = self.path.parent / named
        if target.is_dir():
            target = target / "SKILL.md"
        if not target.is_file():
            raise self.fail(
                f"no skill file at {target}; put a SKILL.md beside this file "
                f"or name it with 'skill: path/to/SKILL.md'",
                ("skill",) if "skill" in data else (),
            )
        return target


def read_case_list(
    path: Path,
    registry: CheckRegistry,
    forms: Mapping[str, tuple[str, frozenset[str]]],
    wanted: str,
) -> Suite:
    """A file whose top level is a mapping holding a list of cases under one known key.

    ``forms`` maps each such key to the format's name and its allowed top-level keys;
    the first key present wins. ``wanted`` names the keys in the error for a file
    that has none of them.
    """
    data, lines = read_data(path)
    reader = FileReader(path, lines, registry)
    if not isinstance(data, Mapping):
        raise reader.fail("the top level must be a mapping with a list of cases")
    key = next((key for key in forms if key in data), None)
    if key is None:
        raise reader.fail(f"no {wanted} list found")
    form, allowed = forms[key]
    reader.check_keys(data, allowed, (), "the top level")
    defaults = reader.defaults(data)
    cases = reader.cases(data[key], key)
    skill = load_skill(reader.skill_path(data))
    return Suite(path=path, format=form, skill=skill, cases=cases, defaults=defaults)
