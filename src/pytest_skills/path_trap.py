"""Saying so when a path option's value moved pytest's rootdir or ini file.

pytest looks for its rootdir and ini file before plugins add their options, so in
``pytest --skill-html /abs/report.html`` it takes ``/abs/report.html`` for a test path
once that file exists (pytest-dev/pytest#1435): the second run finds no ini file, no
``skill_models``, tests nothing and passes. The ``=`` form (``--skill-html=PATH``) is
one argument and cannot be mistaken. pytest's own search is private API, so this
mirrors the part that matters: the common ancestor of the test paths, and the nearest
directory above it that holds a configuration file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_skills.options import OPTIONS

#: Path options whose value is a separate argument in the space form.
PATH_FLAGS: tuple[str, ...] = tuple(
    option.flag
    for option in OPTIONS
    if option.flag is not None and option.metavar in ("PATH", "DIR") and option.bare_value is None
)

#: The files pytest reads its configuration from (pyproject.toml and setup.cfg only
#: with a pytest section, which is why the content is looked at below).
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


@dataclass(frozen=True)
class Trap:
    flag: str
    value: str


def spaced_path_values(args: Sequence[str], invocation_dir: Path) -> list[Trap]:
    """Our path flags given as ``--flag VALUE`` where VALUE is an existing path."""
    found = []
    for flag, value in itertools.pairwise(args):
        if flag in PATH_FLAGS and not value.startswith("-") and (invocation_dir / value).exists():
            found.append(Trap(flag, value))
    return found


def _dirs(paths: Iterable[str], invocation_dir: Path) -> list[Path]:
    dirs = []
    for text in paths:
        path = invocation_dir / text.split("::")[0]
        if path.exists():
            dirs.append((path if path.is_dir() else path.parent).resolve())
    return dirs


def _ancestor(dirs: list[Path], invocation_dir: Path) -> Path:
    if not dirs:
        return invocation_dir.resolve()
    return Path(os.path.commonpath([str(d) for d in dirs]))


def _holds_config(directory: Path) -> bool:
    for name in CONFIG_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if name in ("pytest.ini", ".pytest.ini"):
            return True
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        sections = {"pyproject.toml": "[tool.pytest", "tox.ini": "[pytest]"}
        section = sections.get(name, "[tool:pytest]")
        if section in text:
            return True
    return False


def config_dir(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` with pytest configuration."""
    for directory in (start, *start.parents):
        if _holds_config(directory):
            return directory
    return None


def trap_message(
    args: Sequence[str],
    test_paths: Sequence[str],
    invocation_dir: Path,
    rootpath: Path,
    inipath: Path | None,
) -> str | None:
    """One message when a spaced path value changed where pytest found its ini file."""
    traps = spaced_path_values(args, invocation_dir)
    if not traps:
        return None
    intended = config_dir(_ancestor(_dirs(test_paths, invocation_dir), invocation_dir))
    actual = inipath.parent.resolve() if inipath is not None else None
    if intended == actual:
        return None
    given = ", ".join(f"{trap.flag} {trap.value}" for trap in traps)
    fixed = " ".join(f"{trap.flag}={trap.value}" for trap in traps)
    return (
        f"pytest took the value of {given} for a test path when it looked for its rootdir "
        f"and ini file (pytest-dev/pytest#1435): rootdir {rootpath}, ini file "
        f"{inipath if inipath is not None else 'none'}, so this run may test nothing. "
        f"Write {fixed} (one argument)."
    )


def warn_if_trapped(config: pytest.Config) -> None:
    """Warn (at configure time, so the warnings summary shows it) when trapped."""
    if getattr(config.option, "inifilename", None) or hasattr(config, "workerinput"):
        return  # an explicit -c fixes the ini file; xdist workers inherit the controller's
    params = config.invocation_params
    message = trap_message(
        params.args,
        getattr(config.option, "file_or_dir", None) or [],
        params.dir,
        config.rootpath,
        config.inipath,
    )
    if message:
        config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
