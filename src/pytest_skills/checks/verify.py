"""upskill's ``verifiers``: checks that run on the answer written to a file.

At parse time a case's ``verifiers`` list, with its ``output_file`` and context files,
becomes one ``verify`` check that is ANDed with the case's ``expected`` (so verifiers
count for both conditions and fail like any other check). At run time the check makes
a fresh temporary workspace, writes the context files into it, writes the answer (or,
when it has fenced code blocks, their contents) to the output file, and runs every
verifier there:

* ``{"type": "contains", "value": ...}``: the answer contains every string, ignoring case;
* ``{"type": "file_exists", "path": ...}``: the file exists in the workspace;
* ``{"type": "file_contains", "path": ..., "value": ...}``: the file contains every string,
  ignoring case;
* ``{"type": "command", "command": ..., "timeout": 30}``: the command (a shell string or
  an argument list) exits with status 0 within the timeout; its output shows on failure.
  Commands run as :mod:`.sandbox` says: no secrets in their environment, limits, and
  (with bubblewrap) no network and only the workspace writable.

Pure code: no pytest import.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pytest_skills.checks.registry import CheckRegistry, CheckResult, missing, string_list
from pytest_skills.checks.sandbox import SandboxPolicy
from pytest_skills.checks.sandbox import run as run_sandboxed

VERIFIER_TYPES = ("command", "contains", "file_contains", "file_exists")
DEFAULT_OUTPUT_FILE = "output.txt"
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 3600.0
#: The tail of a command's output shown on failure.
OUTPUT_LIMIT = 2000

_COMMON_KEYS = frozenset({"type", "description", "name"})
_VALUE_KEYS = ("value", "values", "contains")
_KEYS = {
    "contains": _COMMON_KEYS | set(_VALUE_KEYS),
    "file_exists": _COMMON_KEYS | {"path"},
    "file_contains": _COMMON_KEYS | {"path", *_VALUE_KEYS},
    "command": _COMMON_KEYS | {"command", "cmd", "timeout"},
}

_FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Verifier:
    type: str
    #: For the file types: the file, relative to the workspace (default: the output file).
    path: str | None = None
    values: tuple[str, ...] = ()
    command: str | tuple[str, ...] | None = None
    timeout: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Verification:
    """The value of a ``verify`` check."""

    verifiers: tuple[Verifier, ...]
    output_file: str = DEFAULT_OUTPUT_FILE
    #: Context files, written into the workspace before the answer.
    files: tuple[tuple[str, str], ...] = ()


# --- parsing -----------------------------------------------------------------------------


def relative_path(value: Any) -> str:
    """A path inside the workspace: relative, without '..'."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a relative file path")
    if "\x00" in value:
        raise ValueError(f"{value!r} must not contain a NUL character")
    for flavour in (PurePosixPath, PureWindowsPath):
        pure = flavour(value)
        if pure.is_absolute() or pure.anchor or ".." in pure.parts:
            raise ValueError(
                f"{value!r} must be a relative path inside the workspace, without '..'"
            )
    return value


def _values(raw: Mapping[str, Any], kind: str) -> tuple[str, ...]:
    given = [key for key in _VALUE_KEYS if key in raw]
    if len(given) != 1:
        raise ValueError(
            f"a {kind} verifier needs exactly one of 'value', 'values', "
            "'contains' (a string or a list of strings)"
        )
    return string_list(raw[given[0]])


def _command(raw: Mapping[str, Any]) -> str | tuple[str, ...]:
    if ("command" in raw) == ("cmd" in raw):
        raise ValueError("a command verifier needs 'command' (or 'cmd'), a string or a list")
    value = raw["command" if "command" in raw else "cmd"]
    parts = [value] if isinstance(value, str) else value
    if isinstance(parts, Sequence) and any(isinstance(p, str) and "\x00" in p for p in parts):
        raise ValueError("'command' must not contain a NUL character")
    if isinstance(value, str) and value.strip():
        return value
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and value
        and all(isinstance(part, str) and part for part in value)
    ):
        return tuple(value)
    raise ValueError("'command' must be a non-empty string or a list of strings")


def _timeout(raw: Mapping[str, Any]) -> float:
    value = raw.get("timeout", DEFAULT_TIMEOUT_S)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAX_TIMEOUT_S  # NaN fails this too
    ):
        raise ValueError(
            f"'timeout' must be a positive number of seconds (at most {MAX_TIMEOUT_S:g}), "
            f"got {value!r}"
        )
    return float(value)


def parse_verifier(raw: Any) -> Verifier:
    """One upskill verifier; ValueError says what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError("a verifier must be a mapping with a 'type'")
    kind = raw.get("type")
    if kind not in VERIFIER_TYPES:
        shown = "no 'type'" if kind is None else f"unknown verifier type {kind!r}"
        raise ValueError(f"{shown}; known types: {', '.join(VERIFIER_TYPES)}")
    for key in raw:
        if key not in _KEYS[kind]:
            raise ValueError(
                f"unknown key {key!r} in a {kind} verifier; allowed: "
                f"{', '.join(sorted(_KEYS[kind]))}"
            )
    if kind == "contains":
        return Verifier(kind, values=_values(raw, kind))
    path = relative_path(raw["path"]) if "path" in raw else None
    if kind == "file_exists":
        return Verifier(kind, path=path)
    if kind == "file_contains":
        return Verifier(kind, path=path, values=_values(raw, kind))
    return Verifier(kind, command=_command(raw), timeout=_timeout(raw))


def parse_verification(value: Any) -> Verification:
    """The ``verify`` kind's validator: a Verification, or ``{verifiers, output_file}``."""
    if isinstance(value, Verification):
        return value
    if not isinstance(value, Mapping) or not set(value) <= {"verifiers", "output_file"}:
        raise ValueError("expected {verifiers: [...], output_file: name}")
    raw = value.get("verifiers")
    if not isinstance(raw, list) or not raw:
        raise ValueError("'verifiers' must be a non-empty list")
    verifiers = []
    for index, item in enumerate(raw):
        try:
            verifiers.append(parse_verifier(item))
        except ValueError as error:
            raise ValueError(f"verifier {index + 1}: {error}") from None
    output = relative_path(value.get("output_file") or DEFAULT_OUTPUT_FILE)
    return Verification(tuple(verifiers), output)


# --- running -------------------------------------------------------------------------------


def output_text(answer: str) -> str:
    """What goes into the output file: the fenced code blocks' contents, else the answer."""
    blocks = _FENCE.findall(answer)
    if not blocks:
        return answer
    return "".join(block if block.endswith("\n") else block + "\n" for block in blocks)


def _tail(text: str) -> str:
    text = text.rstrip()
    if len(text) > OUTPUT_LIMIT:
        text = "…" + text[-OUTPUT_LIMIT:]
    return text


def _indented(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines()) if text else "      (none)"


def run_command(
    command: str | tuple[str, ...],
    cwd: Path,
    timeout: float,
    policy: SandboxPolicy | None = None,
) -> tuple[int | None, str]:
    """Exit status (None on timeout) and output of a command run in ``cwd``, sandboxed
    as ``policy`` says (see :mod:`.sandbox`). Nothing it started outlives it."""
    return run_sandboxed(command, cwd, timeout, policy or SandboxPolicy())


def _show(command: str | tuple[str, ...]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def _run_one(
    verifier: Verifier, root: Path, answer: str, output_file: str, policy: SandboxPolicy
) -> CheckResult:
    kind = f"{verifier.type} verifier"
    if verifier.type == "contains":
        expected = "the answer contains " + ", ".join(map(repr, verifier.values))
        return _all_present(kind, expected, verifier.values, answer, in_answer=True)
    if verifier.type == "command":
        assert verifier.command is not None
        status, output = run_command(verifier.command, root, verifier.timeout, policy)
        expected = f"`{_show(verifier.command)}` exits with status 0 within {verifier.timeout:g}s"
        if status == 0:
            return CheckResult(kind, True, expected, "exit status 0")
        what = (
            f"timed out after {verifier.timeout:g}s"
            if status is None
            else (f"exit status {status}")
        )
        return CheckResult(kind, False, expected, f"{what}; output:\n{_indented(_tail(output))}")
    path = verifier.path or output_file
    target = root / path
    if verifier.type == "file_exists":
        if target.exists():
            return CheckResult(kind, True, f"{path} exists", "exists")
        present = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        return CheckResult(
            kind,
            False,
            f"{path} exists",
            f"missing; the workspace has {', '.join(present) or 'no files'}",
        )
    expected = f"{path} contains " + ", ".join(map(repr, verifier.values))
    if not target.is_file():
        return CheckResult(kind, False, expected, f"{path} does not exist")
    text = target.read_text(encoding="utf-8", errors="replace")
    return _all_present(kind, expected, verifier.values, text)


def _all_present(
    kind: str, expected: str, values: tuple[str, ...], text: str, *, in_answer: bool = False
) -> CheckResult:
    absent = missing(values, text)
    actual = f"missing {', '.join(map(repr, absent))}" if absent else "all present"
    # Marks point into the answer: a file's contents are not on the page.
    marks = values if in_answer and not absent else ()
    return CheckResult(kind, not absent, expected, actual, marks=marks)


def _write(root: Path, name: str, text: str) -> None:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def evaluate_verification(
    verification: Verification, answer: str, policy: SandboxPolicy | None = None
) -> CheckResult:
    """Write the answer into a fresh workspace and run every verifier there."""
    policy = policy or SandboxPolicy()
    count = len(verification.verifiers)
    expected = f"{count} verifier(s) pass"
    with tempfile.TemporaryDirectory(prefix="pytest-skills-verify-") as directory:
        root = Path(directory)
        try:
            for name, content in verification.files:
                _write(root, name, content)
            _write(root, verification.output_file, output_text(answer))
        except OSError as error:
            return CheckResult("verify", False, expected, f"cannot write the workspace: {error}")
        children = tuple(
            _run_one(v, root, answer, verification.output_file, policy)
            for v in verification.verifiers
        )
    passed = sum(child.passed for child in children)
    return CheckResult("verify", passed == count, expected, f"{passed} of {count} passed", children)


@dataclass(frozen=True)
class VerifyCheck:
    """The ``verify`` kind's evaluator, with the run's sandbox policy."""

    policy: SandboxPolicy = field(default_factory=SandboxPolicy)

    def __call__(self, verification: Verification, answer: str) -> CheckResult:
        return evaluate_verification(verification, answer, self.policy)


def register_verify_check(registry: CheckRegistry, policy: SandboxPolicy | None = None) -> None:
    registry.register(
        "verify",
        VerifyCheck(policy or SandboxPolicy()),
        validate=parse_verification,
        description="upskill's verifiers, run on the answer in a sandboxed workspace",
    )


def use_sandbox_policy(registry: CheckRegistry, policy: SandboxPolicy) -> None:
    """Give the built-in ``verify`` kind the run's policy (a plugin's own kind is kept)."""
    if isinstance(registry.evaluator("verify"), VerifyCheck):
        register_verify_check(registry, policy)
