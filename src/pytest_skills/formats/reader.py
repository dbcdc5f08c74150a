"""The reader every format shares: data with the line of every key, and the case schema.

:func:`read_data` (``loading.py``) parses JSON or YAML within limits and maps key paths
to lines;
:class:`FileReader` turns raw mappings into :class:`Case` objects and raises
:class:`FormatError` naming the file, the line and what to do. Pure code: no pytest.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_skills.checks import Check, CheckRegistry, CheckSpecError
from pytest_skills.checks.verify import (
    DEFAULT_OUTPUT_FILE,
    Verification,
    parse_verifier,
    relative_path,
)
from pytest_skills.formats.data import Case, FormatError, KeyPath, plain
from pytest_skills.formats.keys import UnusedKeys, near_miss
from pytest_skills.formats.notices import Notice
from pytest_skills.models import parse_reasoning

SAMPLING_KEYS = frozenset({"temperature", "max_tokens", "seed", "reasoning"})
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
        # upskill's TestCase: a check kind by name, and its value
        "validator",
        "validator_config",
    }
    | SAMPLING_KEYS
)


@dataclass(frozen=True)
class Source:
    """A skill test file's data, read once: what collection decides on and loads from."""

    path: Path
    #: The format's name: "native", "upskill", "article", "agentskills" or "scenarios".
    format: str
    data: Any
    lines: dict[KeyPath, int]


class FileReader:
    """Reads one file's raw data into cases; every error names the file and line.

    Keys it does not use become metadata, named in one warning per file
    (:meth:`warnings`); a near miss of a key it knows is an error.
    """

    def __init__(
        self, path: Path, lines: dict[KeyPath, int], registry: CheckRegistry | None = None
    ):
        self.path = path
        self.registry = registry or CheckRegistry()
        self.lines = lines
        self.unused = UnusedKeys()
        self.notes: list[str] = []

    def line(self, path: KeyPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def fail(self, message: str, path: KeyPath = ()) -> FormatError:
        return FormatError(self.path, message, self.line(path))

    def note(self, message: str, path: KeyPath = ()) -> None:
        """A problem worth a warning that does not stop the file, shown at the line of
        ``path`` (the key's, else the nearest enclosing one's, such as the case's)."""
        self.notes.append(Notice(message, self.line(path)))

    def warnings(self) -> tuple[str, ...]:
        unused = self.unused.warning()
        return (*self.notes, *([unused] if unused else []))

    def metadata(
        self, data: Mapping[str, Any], known: Collection[str], path: KeyPath, what: str
    ) -> dict[str, Any]:
        """The keys of ``data`` not in ``known``, kept as metadata; a near miss is an error."""
        kept = {}
        for key, value in data.items():
            name = str(key)
            if name in known:
                continue
            meant = near_miss(name, known)
            if meant is not None:
                raise self.fail(
                    f"unknown key {name!r} in {what}; did you mean {meant!r}?", (*path, name)
                )
            self.unused.add(name, self.line((*path, name)), what)
            kept[name] = plain(value)
        return kept

    def one_of(self, data: Mapping[str, Any], keys: tuple[str, str], path: KeyPath) -> str:
        """Which of two alias keys is given (the first when neither); both is an error."""
        first, second = keys
        if data.get(first) is not None and data.get(second) is not None:
            raise self.fail(f"give either {first!r} or {second!r}, not both", (*path, second))
        return second if data.get(second) is not None else first

    def sampling(self, data: Mapping[str, Any], path: KeyPath) -> dict[str, Any]:
        values = {k: data[k] for k in SAMPLING_KEYS if k in data}
        for key, value in values.items():
            if key == "reasoning":
                try:
                    values[key] = parse_reasoning(value)
                except ValueError as error:
                    raise self.fail(str(error), (*path, key)) from None
                continue
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
                key == "seed" and value is None
            )
            if not ok or (key == "max_tokens" and (not isinstance(value, int) or value < 1)):
                raise self.fail(
                    f"{key} must be a number (max_tokens a positive integer)", (*path, key)
                )
            if key == "seed" and value is not None and abs(value) >= 2**63:
                raise self.fail("seed must fit in 64 bits (below 2**63)", (*path, key))
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
        raw = data.get("defaults") or {}
        if not isinstance(raw, Mapping):
            raise self.fail("'defaults' must be a mapping, e.g. {temperature: 0}", ("defaults",))
        for key in raw:
            if key not in SAMPLING_KEYS:
                raise self.fail(
                    f"unknown key {key!r} in defaults; allowed: {', '.join(sorted(SAMPLING_KEYS))}",
                    ("defaults", str(key)),
                )
        return self.sampling(raw, ("defaults",))

    def context_files(self, raw: Any, path: KeyPath) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, Mapping):
            raise self.fail("'context' must be a mapping with 'files: {name: content}'", path)
        self.metadata(raw, {"files"}, path, "context")
        files = raw.get("files") or {}
        if not isinstance(files, Mapping) or not all(isinstance(v, str) for v in files.values()):
            raise self.fail("'context.files' must map file names to their text", (*path, "files"))
        return tuple((str(name), content) for name, content in files.items())

    def parse(self, expect: Any, path: KeyPath) -> Check:
        try:
            return self.registry.parse(expect, path)
        except CheckSpecError as error:
            raise self.fail(str(error), error.path or path) from None

    def prompt_text(self, raw: Mapping[str, Any], key: str, what: str, path: KeyPath) -> str:
        """The case's question under ``key``: a string with something in it."""
        text = raw.get(key)
        if not isinstance(text, str) or not text.strip():
            raise self.fail(f"{what} needs a non-empty '{key}' string", path)
        return text

    def case_id(self, raw: Mapping[str, Any], key: str, default: str, path: KeyPath) -> str:
        value = raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            raise self.fail(f"'{key}' must be a number or a non-empty string", (*path, key))
        if "::" in str(value):
            # pytest splits node ids on '::': such an item could never be selected by id.
            raise self.fail(f"'{key}' {value!r} must not contain '::'", (*path, key))
        return str(value).strip()

    def case(self, raw: Any, index: int, path: KeyPath, *, graded_elsewhere: bool = False) -> Case:
        """One case of the native, article or upskill form (upskill's whole TestCase).

        ``graded_elsewhere``: a case without checks of its own is fine (an upskill
        scenario adds its judge criteria to every case).
        """
        what = f"case {index + 1}"
        if not isinstance(raw, Mapping):
            raise self.fail(f"{what} must be a mapping with 'input' and 'expect'", path)
        metadata = self.metadata(raw, CASE_KEYS, path, what)
        text = self.prompt_text(raw, "input", what, path)
        key = self.one_of(raw, ("expect", "expected"), path)
        checks = []
        expect = _asks_for_something(raw.get(key))
        if expect is not None:
            checks.append(self.parse(expect, (*path, key)))
        output_file = raw.get("output_file")
        if output_file is not None and not isinstance(output_file, str):
            raise self.fail("'output_file' must be a file name", (*path, "output_file"))
        files = self.context_files(raw.get("context"), (*path, "context"))
        verifiers = raw.get("verifiers") or []
        if not isinstance(verifiers, list) or not all(isinstance(v, Mapping) for v in verifiers):
            raise self.fail("'verifiers' must be a list of mappings", (*path, "verifiers"))
        if verifiers:
            checks.append(self.verified(verifiers, output_file, files, path))
        validator, skip = self.validator(raw, path, what, has_checks=bool(checks))
        if validator is not None:
            checks.append(validator)
        if not checks and skip is None and not graded_elsewhere:
            if raw.get(key) is not None:
                raise self.fail(
                    f"{what}: '{key}' asks for nothing (an empty 'contains'); add a check",
                    (*path, key),
                )
            raise self.fail(f"{what} needs an 'expect' mapping of checks", path)
        xfail = raw.get("xfail")
        if xfail is not None and (not isinstance(xfail, str) or not xfail.strip()):
            raise self.fail(
                "'xfail' takes the reason the case is expected to fail", (*path, "xfail")
            )
        return Case(
            id=self.case_id(raw, "id", f"case-{index + 1}", path),
            input=text,
            check=all_of(checks, path),
            context_files=files,
            sampling=self.sampling(raw, path),
            line=self.line(path),
            verifiers=tuple(dict(v) for v in verifiers),
            output_file=output_file,
            xfail=xfail,
            skip=skip,
            metadata=metadata,
        )

    def validator(
        self, raw: Mapping[str, Any], path: KeyPath, what: str, *, has_checks: bool
    ) -> tuple[Check | None, str | None]:
        """upskill's ``validator``: a check kind by name, given ``validator_config``.

        Returns the check, or, when no plugin registered that kind, the reason the case
        cannot be graded (None when other checks grade it, as upskill falls back too).
        """
        name = raw.get("validator")
        if name is None:
            return None, None
        if not isinstance(name, str) or not name.strip():
            raise self.fail("'validator' must name a check kind", (*path, "validator"))
        config = raw.get("validator_config")
        if config is not None and not isinstance(config, Mapping):
            raise self.fail(
                "'validator_config' must be a mapping (the check's value)",
                (*path, "validator_config"),
            )
        if name in self.registry:
            return self.parse({name: dict(config or {})}, (*path, "validator")), None
        hint = "register it with the pytest_skills_register_checks hook"
        if has_checks:
            self.note(
                f"{what}: validator {name!r} is not a check kind here, so only its other "
                f"checks grade it ({hint})",
                (*path, "validator"),
            )
            return None, None
        return None, f"upskill validator {name!r} is not a check kind here: {hint}"

    def verified(
        self,
        verifiers: list[Mapping[str, Any]],
        output_file: str | None,
        files: tuple[tuple[str, str], ...],
        path: KeyPath,
    ) -> Check:
        """upskill's verifiers become one ``verify`` check (ANDed with the case's others)."""
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
        return self.parse({"verify": value}, (*path, "verifiers"))

    def cases(self, raw: Any, key: KeyPath, *, graded_elsewhere: bool = False) -> tuple[Case, ...]:
        """The case list at ``key`` (``()`` for the top level of a bare list)."""
        name = str(key[-1]) if key else "the list"
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise self.fail(f"'{name}' must be a list of cases", key)
        if not raw:
            self.note(f"'{name}' is empty: no cases to collect", key)
        cases = tuple(
            self.case(item, i, (*key, i), graded_elsewhere=graded_elsewhere)
            for i, item in enumerate(raw)
        )
        self.unique_ids(cases, key, "case")
        return cases

    def unique_ids(self, cases: tuple[Case, ...], key: KeyPath, noun: str) -> None:
        """Fail on the first case id used twice in the list at ``key``."""
        seen: dict[str, int] = {}
        for i, case in enumerate(cases):
            first = seen.setdefault(case.id, i)
            if first != i:
                raise self.fail(
                    f"{noun} id {case.id!r} is used twice ({noun}s {first + 1} and {i + 1})",
                    (*key, i, "id"),
                )

    def skill_path(self, data: Mapping[str, Any]) -> Path:
        named = data.get("skill") or "SKILL.md"
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


def all_of(checks: list[Check], path: KeyPath) -> Check | None:
    """One check that passes when all of ``checks`` do (None for none)."""
    if not checks:
        return None
    return checks[0] if len(checks) == 1 else Check("all", tuple(checks), path)


def _asks_for_something(expect: Any) -> Any:
    """``expect`` without upskill's empty ``contains`` list, which asks for nothing
    (upskill writes ``{"contains": []}`` beside a validator); None when nothing is left."""
    if not isinstance(expect, Mapping) or expect.get("contains") != []:
        return expect
    rest = {k: v for k, v in expect.items() if k != "contains"}
    return rest or None
