"""Rebuild an untrusted cache from the entries in it that check out.

``--skill-cache=refresh`` and ``--skill-cache-prune`` are how a cache is cleaned, so on
a cache whose schema is not diskcache's (see ``schema.py``) they never write into the
file: they make a new ``cache.db`` with diskcache's own schema, copy into it only rows
that pass every check a replay makes (a plain string key, text stored inline or in a
regular value file inside the directory, an entry :func:`~.entries.decode` accepts, a
key stored once), and put it in place of the old one. The old file is only read: with
``trusted_schema`` off, from its ``Cache`` table directly (never through an index or a
view), and only when that table is defined exactly as diskcache defines it; its
triggers never run, since nothing is written to it.

The new file holds every value inline, so no value file of the old cache stays in use;
those its rows named are removed. One process rebuilds at a time (a lock on the
directory): xdist workers that find the cache untrusted together wait, then find it
rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_RAW, MODE_TEXT

from pytest_skills.execution.entries import decode
from pytest_skills.execution.schema import (
    COMPANIONS,
    DB_NAME,
    WRITER_SETTINGS,
    UntrustedCacheError,
    check_files,
    check_schema,
    expected,
)
from pytest_skills.execution.store import SafeDisk, UnreadableValueError, sqlite_text, value_text

#: Work directories of a rebuild, inside the cache directory so that the new file is
#: moved into place, never copied; one a killed rebuild left is removed by the next.
WORK_PREFIX = ".rebuild-"
#: The names diskcache gives value files: the only files a rebuild removes.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val")


@dataclass(frozen=True)
class Rebuilt:
    #: What made the old cache untrusted.
    problem: str
    kept: int
    refused: int


def rebuild(directory: Path) -> Rebuilt | None:
    """Replace an untrusted ``cache.db`` with its verified entries; None when it is
    trusted (another process may have rebuilt it while this one waited)."""
    with _locked(directory):
        problem = _problem(directory)
        if problem is None:
            return None
        for leftover in directory.glob(f"{WORK_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=directory))
        try:
            kept, refused, value_files = _copy_verified(directory, work / DB_NAME)
            for name in COMPANIONS:
                # They belong to the old file: SQLite must never apply its log to the new.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(directory / name)
            os.replace(work / DB_NAME, directory / DB_NAME)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        disk = SafeDisk(str(directory))
        for name in value_files:
            disk.remove(name)
        return Rebuilt(problem, kept, refused)


def _problem(directory: Path) -> str | None:
    try:
        check_files(directory)
        if not (directory / DB_NAME).exists():
            return None
        db = _open_read_only(directory / DB_NAME)
        try:
            check_schema(db)
        finally:
            db.close()
    except UntrustedCacheError as error:
        return str(error)
    return None


def _open_read_only(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    db.text_factory = sqlite_text
    db.execute("PRAGMA trusted_schema = OFF")
    db.execute("PRAGMA query_only = ON")
    return db


def _copy_verified(directory: Path, target: Path) -> tuple[int, int, list[str]]:
    """Write the old cache's verified rows into a new cache at ``target``: how many
    were kept and refused, and the value files the old rows named."""
    diskcache.Cache(str(target.parent), **WRITER_SETTINGS).close()
    new = sqlite3.connect(target, isolation_level=None)
    refused = 0
    seen: set[str] = set()
    twice: set[str] = set()
    value_files: list[str] = []
    try:
        new.execute("PRAGMA trusted_schema = OFF")
        new.execute("BEGIN")
        now = time.time()
        for key, raw, mode, filename, value in _old_rows(directory):
            if mode == MODE_TEXT and isinstance(filename, str) and _VALUE_FILE.fullmatch(filename):
                value_files.append(filename)
            text = _verified(directory, key, raw, (mode, filename, value))
            if text is None:
                refused += 1
            elif key in seen:
                refused += 1 + (key not in twice)  # which is the answer? neither is kept
                twice.add(key)
            else:
                seen.add(key)
                new.execute(
                    "INSERT INTO Cache (key, raw, store_time, access_time, mode, value)"
                    " VALUES (?, 1, ?, ?, ?, ?)",
                    (key, now, now, MODE_RAW, text),
                )
        for key in twice:
            new.execute("DELETE FROM Cache WHERE key = ? AND raw = 1", (key,))
        new.execute("COMMIT")
        new.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        new.close()
    if os.path.exists(f"{target}-wal"):
        raise OSError(f"the rebuilt cache's log at {target}-wal was not folded into it")
    return len(seen) - len(twice), refused, value_files


def _old_rows(directory: Path) -> Iterator[tuple[Any, ...]]:
    """The old ``Cache`` table's rows, read from the table itself, or none at all when
    it is not exactly diskcache's table (a view, another definition) or a link."""
    try:
        check_files(directory)
    except UntrustedCacheError:
        return
    path = directory / DB_NAME
    if not path.exists():
        return
    table = next(
        (row for row in expected().objects if row[0] == "table" and row[1] == "Cache"), None
    )
    db = _open_read_only(path)
    try:
        found = db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name = 'Cache'"
        ).fetchall()
        if [tuple(row) for row in found] != [table]:
            return
        cursor = db.execute("SELECT key, raw, mode, filename, value FROM Cache NOT INDEXED")
        while batch := cursor.fetchmany(256):
            yield from batch
    finally:
        db.close()


def _verified(directory: Path, key: Any, raw: Any, row: tuple[Any, Any, Any]) -> str | None:
    """The entry's text when a replay would read it, else None."""
    if not isinstance(key, str) or raw != 1:
        return None
    try:
        text = value_text(directory, row)
        decode(key, text)
    except (UnreadableValueError, ValueError):
        return None
    return text


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One rebuild at a time in ``directory``, across processes (where flock exists)."""
    try:
        import fcntl
    except ImportError:  # Windows: xdist workers rebuilding together is then possible
        yield
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)
