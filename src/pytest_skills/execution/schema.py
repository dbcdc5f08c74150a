"""What a cache's ``cache.db`` may hold: exactly what diskcache creates for pytest-skills.

A committed ``cache.db`` is a program as much as a file: a trigger runs on every write
(one replacing diskcache's own ``Settings_size_insert`` survives, since diskcache only
creates its triggers ``IF NOT EXISTS``), a view named ``Cache`` answers every read, and
a ``Settings`` row becomes a pragma on every connection diskcache opens
(``sqlite_journal_mode = off``). So before a cache is used, its schema is compared
with the one diskcache makes, read from a fresh cache in a temporary directory (once
per process, so it follows the diskcache installed): every table, index, trigger and
view by its full definition, and every ``Settings`` row by value. Anything else makes
the cache untrusted: nothing is read from it or written into it.

An object that is missing is not a deviation: diskcache creates its tables one
statement at a time, so another xdist worker may be half-way through, and what is
missing is created as diskcache defines it.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import DEFAULT_SETTINGS, METADATA

from pytest_skills.errors import SkillsError

DB_NAME = "cache.db"
#: The files SQLite keeps beside the database; each, when present, is read or written.
COMPANIONS = (f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal")
#: diskcache's settings with ours: no eviction, no size limit worth the name.
WRITER_SETTINGS: Mapping[str, Any] = {
    **DEFAULT_SETTINGS,
    "eviction_policy": "none",
    "size_limit": 2**40,
}
#: Settings whose value never changes what the cache does: any whole number is theirs.
#: The counters are kept by diskcache's triggers; the pickle protocol is used only for
#: pickles, which the cache never writes (a file recorded on a later Python may differ).
FREE_SETTINGS = frozenset({*METADATA, "disk_pickle_protocol"})


_RANK = {"view": 1, "trigger": 2, "table": 3, "index": 4}


class UntrustedCacheError(SkillsError):
    """``cache.db`` is not what diskcache creates; ``str()`` says what differs."""


@dataclass(frozen=True)
class Expected:
    #: (type, name, table, sql) of every schema object, as ``sqlite_master`` lists them.
    objects: frozenset[tuple[str, str, str, str | None]]
    settings: Mapping[str, Any]

    def kind_of(self, name: str) -> str | None:
        return next((kind for kind, known, _, _ in self.objects if known == name), None)


@functools.lru_cache(maxsize=1)
def expected() -> Expected:
    """The schema of a cache diskcache creates with :data:`WRITER_SETTINGS`."""
    with tempfile.TemporaryDirectory(prefix="pytest-skills-schema-") as directory:
        diskcache.Cache(directory, **WRITER_SETTINGS).close()
        db = sqlite3.connect(Path(directory, DB_NAME))
        try:
            objects = frozenset(
                db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
            )
            settings = dict(db.execute("SELECT key, value FROM Settings").fetchall())
        finally:
            db.close()
    return Expected(objects, settings)


def check_files(directory: Path) -> None:
    """UntrustedCacheError unless ``cache.db`` and its companions are regular files or absent.

    A symlink named ``cache.db`` (or ``cache.db-wal``) would make SQLite read and
    write wherever it points: a recording run would create a database outside the
    cache directory, or overwrite a file there with a write-ahead log.
    """
    for name in (DB_NAME, *COMPANIONS):
        try:
            mode = os.lstat(directory / name).st_mode
        except FileNotFoundError:
            continue
        except OSError as error:
            raise UntrustedCacheError(f"its {name} cannot be examined ({error.strerror})") from None
        if stat.S_ISLNK(mode):
            raise UntrustedCacheError(f"its {name} is a symbolic link, not a file")
        if not stat.S_ISREG(mode):
            raise UntrustedCacheError(f"its {name} is not a regular file")


def check_schema(db: sqlite3.Connection) -> None:
    """UntrustedCacheError unless everything ``db`` holds is what diskcache creates.

    ``db`` runs with ``trusted_schema`` off, so even parsing the schema calls nothing.
    """
    known = expected()
    try:
        objects = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as error:
        raise UntrustedCacheError(f"the schema of its {DB_NAME} cannot be read ({error})") from None
    # Views and triggers first: they are what can change answers, so they are named.
    for row in sorted(objects, key=lambda row: (_RANK.get(row[0], 0), repr(row))):
        if tuple(row) not in known.objects:
            raise UntrustedCacheError(f"its {DB_NAME} holds {_describe(row, known)}")
    if ("table", "Settings", "Settings") not in {tuple(row[:3]) for row in objects}:
        return
    try:
        settings = db.execute("SELECT key, value FROM Settings").fetchall()
    except sqlite3.DatabaseError as error:
        raise UntrustedCacheError(
            f"the Settings of its {DB_NAME} cannot be read ({error})"
        ) from None
    for name, value in sorted(settings, key=repr):
        problem = _setting_problem(name, value, known.settings)
        if problem:
            raise UntrustedCacheError(f"its {DB_NAME} holds {problem}")


def _describe(row: tuple[Any, ...], known: Expected) -> str:
    kind, name, _, sql = row
    ours = known.kind_of(name) if isinstance(name, str) else None
    shown = _short(sql)
    if ours is None:
        return f"{_a(kind)} {name!r} that diskcache never creates ({shown})"
    if ours != kind:
        return f"{_a(kind)} named {name!r} where diskcache creates {_a(ours)} ({shown})"
    return f"a changed definition of diskcache's {kind} {name!r} ({shown})"


def _a(kind: Any) -> str:
    return f"an {kind}" if str(kind)[:1] in ("a", "e", "i", "o", "u") else f"a {kind}"


def _setting_problem(name: Any, value: Any, settings: Mapping[str, Any]) -> str | None:
    if not isinstance(name, str) or name not in settings:
        return f"a Settings row {_short(name)} that diskcache never writes"
    if name in FREE_SETTINGS:
        if type(value) is int:
            return None
        return f"a Settings row {name} = {_short(value)}, not a whole number"
    wanted = settings[name]
    if type(value) is type(wanted) and value == wanted:
        return None
    return f"a Settings row {name} = {_short(value)} (pytest-skills writes {wanted!r})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
