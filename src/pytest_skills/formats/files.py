"""The files a skill test file names beside itself: confined, bounded and read once.

A test file comes from anywhere (a pull request, a downloaded skill), and so do the
``SKILL.md`` files, context files and scenario tests files it names. Reading them:

* never through a symlink that leads out of the project (pytest's rootdir, else the
  working directory), and never from ``/proc``, ``/sys`` or ``/dev``, however the path
  gets there: a context file linked to ``/proc/self/environ`` would put every
  environment variable into the prompt and the reports;
* only regular files, opened without blocking, so a FIFO is refused at once rather
  than waited on;
* at most :data:`MAX_TEXT_BYTES` per file, checked before reading and while reading;
* at most :data:`MAX_READ_BYTES` in all for one test file (or one scenario), each
  distinct file (by device and inode, so links to one file count once) read once,
  however many times it is named: a manifest that names one skill 1,500 times costs
  one read, not 1,500.

Pure code: no pytest. The plugin tells this module the rootdir (:func:`set_project_root`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pytest_skills.errors import SkillsError

#: The most one SKILL.md or context file may hold: a system prompt or a context file
#: larger than this fits no model's context window.
MAX_TEXT_BYTES = 10 * 2**20
#: The most one test file (or one scenario) may read beside itself, its distinct files
#: together.
MAX_READ_BYTES = 32 * 2**20
#: Where no skill or context file ever lives: kernel and device views of this machine.
SYSTEM_ROOTS = tuple(Path(p) for p in ("/proc", "/sys", "/dev"))

_project_root: Path | None = None
#: Which session read a file: part of every key a file's text is kept under.
_generation = 0


class UnsafeFileError(SkillsError, ValueError):
    """A named file that must not be read; the message says which, why and what to do."""


def set_project_root(root: Path | None) -> Path | None:
    """Files reached through a symlink must stay under ``root`` (None: the working
    directory). Returns the root it replaces, for restoring.

    A new root starts a new session: nothing read before is reused (a file rewritten
    between two in-process runs can keep its size and, on a coarse clock, its mtime).
    """
    global _project_root, _generation
    previous, _project_root = _project_root, root
    _generation += 1
    _texts.clear()
    return previous


def generation() -> int:
    """Which session this is: a key part of anything kept from reading files."""
    return _generation


def project_root() -> Path:
    return Path(os.path.realpath(_project_root or Path.cwd()))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _first_link(path: Path) -> Path | None:
    """The first component of ``path`` (as written: ``..`` kept) that is a symlink."""
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        if current.is_symlink():
            return current
    return None


def confined(path: Path) -> Path:
    """The real path of ``path`` once it is known to be safe to read.

    Raises :class:`UnsafeFileError` naming the link when ``path`` leads through a symlink
    out of the project, or anywhere into ``/proc``, ``/sys`` or ``/dev``.
    """
    raw = path if path.is_absolute() else Path.cwd() / path
    written = Path(os.path.normpath(raw))
    real = Path(os.path.realpath(raw))  # what open() reaches: a link, then its '..'
    link = _first_link(raw) if real != written else None
    if any(_inside(real, system) for system in SYSTEM_ROOTS):
        via = f"is a symlink to {real}" if link is not None else f"is in {real.parent}"
        raise UnsafeFileError(
            f"{link or written} {via}, a view of this machine, not a project file; "
            "name a file in the project instead"
        )
    if real != written:
        root = project_root()
        if not _inside(real, root):
            leads = (
                f"{link} is a symlink to {os.path.realpath(link)}"
                if link is not None
                else f"{written} leads to {real}"
            )
            raise UnsafeFileError(
                f"{leads}, outside the project {root}; copy the file into the project "
                "instead of linking to it"
            )
    return real


@dataclass
class _Budget:
    """What one test file (or scenario) has read so far."""

    limit: int
    used: int = 0
    seen: set[tuple[int, int]] = field(default_factory=set)


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


@contextlib.contextmanager
def read_budget(limit: int = MAX_READ_BYTES) -> Iterator[None]:
    """Files read inside share one budget of ``limit`` bytes (each distinct file once)."""
    token = _budget.set(_Budget(limit))
    try:
        yield
    finally:
        _budget.reset(token)


#: Texts read, by (session, device, inode, size, mtime): a file named again is not
#: read again.
#: Bounded by bytes: the point is repeats within one collection, not a second copy of
#: the tree.
FileKey = tuple[int, int, int, int, int]
_texts: dict[FileKey, str] = {}
_TEXTS_KEPT_BYTES = MAX_READ_BYTES


def read_text(path: Path, what: str = "file") -> str:
    """The UTF-8 text of the file at ``path`` (a BOM dropped), read within the limits."""
    return read_keyed(path, what)[0]


def read_keyed(path: Path, what: str = "file") -> tuple[str, FileKey]:
    """The file's text and what identifies this version of it.

    Raises :class:`UnsafeFileError` (confinement), ``OSError`` (cannot open or read),
    ``UnicodeDecodeError`` (not text) or ``ValueError`` (too large, not a regular
    file); every message names the file and what to do.
    """
    with open_regular(confined(path), what) as (handle, info):
        key = (_generation, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if info.st_size > MAX_TEXT_BYTES:
            raise ValueError(_too_large(what, info.st_size))
        _charge(key[1:3], info.st_size)
        cached = _texts.pop(key, None)
        if cached is None:
            data = handle.read(MAX_TEXT_BYTES + 1)
            if len(data) > MAX_TEXT_BYTES:  # it grew since it was measured
                raise ValueError(_too_large(what, len(data)))
            cached = data.decode("utf-8-sig")  # editors on Windows add a BOM
    _texts[key] = cached  # last: the most recently used is kept longest
    while sum(len(text) for text in _texts.values()) > _TEXTS_KEPT_BYTES and len(_texts) > 1:
        del _texts[next(iter(_texts))]
    return cached, key


@contextlib.contextmanager
def open_regular(path: Path, what: str) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """``path`` open for reading, and its status; ValueError unless a regular file.

    Opened without blocking: opening a FIFO for reading would wait for a writer.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(
                f"it is not a regular file (a FIFO, device or socket); a {what} must be one"
            )
        yield handle, info


def _charge(identity: tuple[int, int], size: int) -> None:
    budget = _budget.get()
    if budget is None or identity in budget.seen:
        return
    budget.seen.add(identity)
    budget.used += size
    if budget.used > budget.limit:
        raise ValueError(
            f"it brings the files this test file names to "
            f"{budget.used / 2**20:.1f} MB; together they are limited to "
            f"{budget.limit // 2**20} MB (each file counts once, however often it is named)"
        )


def _too_large(what: str, size: int) -> str:
    return (
        f"it is {size / 2**20:.1f} MB; a {what} is limited to "
        f"{MAX_TEXT_BYTES // 2**20} MB (no model's context holds more)"
    )
