"""An Agent Skills eval's context files: ``files`` (and ``input_file``) as written in
the wild. Pure code: no pytest.

Authors write paths relative to the skill directory (the spec), to the directory
holding ``evals/`` or to ``evals/`` itself; some wrote them from a directory above the
repository (``repo/evals/x``), and some name a directory, meaning every file in it
(``evals/fixtures/eval-1``): each becomes a context file named by its path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_skills.checks.verify import relative_path
from pytest_skills.formats.data import KeyPath
from pytest_skills.formats.files import read_text
from pytest_skills.formats.reader import FileReader

#: A directory named in ``files`` gives at most this many files: more is not context
#: for one question but a repository, and would be sent with every request.
MAX_DIRECTORY_FILES = 100


def _resolve(name: str, bases: tuple[Path, ...]) -> tuple[Path, str | None] | None:
    """The file or directory ``name`` names, and how it was found when not as written
    (the longest tail of the path that exists under one of the bases)."""
    for base in bases:
        if (base / name).exists():
            return base / name, None
    parts = PurePosixPath(name.replace("\\", "/")).parts
    for start in range(1, len(parts)):
        tail = PurePosixPath(*parts[start:])
        for base in bases:
            if (base / tail).exists():
                return base / tail, str(tail)
    return None


def _directory_files(directory: Path) -> list[tuple[str, Path]]:
    """Every file under ``directory`` (hidden ones and symlinks left out), by sorted path."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root, name)
            if not name.startswith(".") and not path.is_symlink() and path.is_file():
                found.append((path.relative_to(directory).as_posix(), path))
    return found


def _read(reader: FileReader, name: str, target: Path, where: KeyPath) -> str:
    try:
        return read_text(target, "context file")
    except UnicodeDecodeError:
        raise reader.fail(
            f"{name} is not UTF-8 text; only text files can be given to a model as context",
            where,
        ) from None
    except (OSError, ValueError) as error:  # ValueError: a symlink out, too large, a FIFO
        raise reader.fail(f"cannot read {name}: {error}", where) from None


def context_files(
    reader: FileReader,
    raw: Mapping[str, Any],
    path: KeyPath,
    bases: tuple[Path, ...],
    label: str,
) -> tuple[tuple[str, str], ...]:
    """The eval's context files, in the order named; ``label`` names the eval in notes."""
    listed = raw.get("files")
    if listed is not None and not isinstance(listed, list):
        raise reader.fail("'files' must be a list of file paths", (*path, "files"))
    named = [(name, (*path, "files", i)) for i, name in enumerate(listed or [])]
    if raw.get("input_file") is not None:
        named.append((raw["input_file"], (*path, "input_file")))
    files: list[tuple[str, str]] = []
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
            reader.note(f"{label}: file {name!r} is not where it says; read {tail} instead", where)
        if target.resolve() in read:  # named twice: in the prompt once
            reader.note(f"{label}: file {name!r} is listed again; it is given once", where)
            continue
        read.add(target.resolve())
        if not target.is_dir():
            files.append((name, _read(reader, name, target, where)))
            continue
        inside = _directory_files(target)
        if not inside:
            raise reader.fail(f"the directory {name} holds no files to give as context", where)
        if len(inside) > MAX_DIRECTORY_FILES:
            raise reader.fail(
                f"the directory {name} holds {len(inside)} files, more than "
                f"{MAX_DIRECTORY_FILES}; name the files the eval needs",
                where,
            )
        prefix = name.rstrip("/\\")
        files.extend(
            (f"{prefix}/{relative}", _read(reader, f"{prefix}/{relative}", file, where))
            for relative, file in inside
        )
    return tuple(files)
