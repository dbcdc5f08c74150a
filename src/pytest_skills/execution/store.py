"""The cache's storage: a diskcache directory, read only as the text this package writes.

A cache is committed to a repository, so its files come from whoever can open a pull
request. What that lets them do is fixed here:

* Values are read with this module's own SQLite queries, never through diskcache's
  ``get`` (which unpickles). Only rows whose key is a plain string are looked at, and
  only text is returned: a value stored inline (diskcache's mode 1) or in a file
  inside the cache directory (mode 3). A pickle (mode 4), binary data (mode 2), or a
  file name that leads outside the directory is refused as an unreadable entry. Keys
  stored as pickles are never even decoded.
* Writes go through diskcache with :class:`SafeDisk`, which stores only text, never
  unpickles, and never reads or deletes a file outside the directory (diskcache
  would delete whatever file an overwritten row names).
* Before anything is read or written, ``cache.db`` must hold exactly the schema diskcache
  creates (see ``schema.py``): a trigger, a view or a ``Settings`` row of anyone
  else's makes the whole cache untrusted, and it must be a regular file, as must its
  write-ahead log. Value files are read only when they are regular files: a FIFO or
  a device is refused at once, never opened in a way that waits.
* Every connection runs with ``trusted_schema`` off, so even a schema under
  examination cannot call functions with side effects.

Replays, and any run whose cache directory is read-only, read without writing a byte:
immutably when no write-ahead log is pending, else read-only through the log, so
answers a killed run committed are seen (from a private copy when the directory is
read-only and SQLite could not share the log there).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT

from pytest_skills.errors import SkillsError
from pytest_skills.execution import entries
from pytest_skills.execution.schema import (
    COMPANIONS,
    DB_NAME,
    WRITER_SETTINGS,
    UntrustedCacheError,
    check_files,
    check_schema,
)

__all__ = [
    "DB_NAME",
    "WRITER_SETTINGS",
    "SafeDisk",
    "StoreReader",
    "UnreadableValueError",
    "UntrustedCacheError",
    "fold_log",
    "open_writer",
    "sqlite_text",
    "value_text",
    "writable",
]

#: A row as stored: (mode, filename, value).
Row = tuple[Any, Any, Any]
#: Opens a value file without following a link and without waiting on a FIFO.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class UnreadableValueError(SkillsError):
    """A stored value this package refuses to read; ``str()`` says what it is."""


def value_text(directory: Path, row: Row) -> str:
    """The text a row holds, or UnreadableValueError: never a pickle, never a file elsewhere."""
    mode, filename, value = row
    if mode == MODE_RAW:
        if isinstance(value, str):
            if len(value) > entries.MAX_ENTRY_BYTES:
                raise UnreadableValueError(
                    f"it is larger than {entries.size(entries.MAX_ENTRY_BYTES)}"
                )
            return value
        kind = "bytes" if isinstance(value, bytes) else type(value).__name__
        raise UnreadableValueError(f"it holds {kind}, not text")
    if mode == MODE_TEXT:
        return _value_file(directory, filename)
    if mode == MODE_PICKLE:
        raise UnreadableValueError("it is a pickle (which can run code when loaded)")
    if mode == MODE_BINARY:
        raise UnreadableValueError("it holds binary data, not text")
    raise UnreadableValueError(f"its storage mode {mode!r} is unknown")


def _value_file(directory: Path, filename: Any) -> str:
    if not isinstance(filename, str) or not filename:
        raise UnreadableValueError("it names no value file")
    try:
        root = directory.resolve()
        target = (root / filename).resolve()
    except (OSError, ValueError) as error:  # ValueError: a NUL in the name
        raise UnreadableValueError(f"its value file {filename!r} is unusable: {error}") from None
    if target == root or not target.is_relative_to(root):
        raise UnreadableValueError(f"its value file {filename!r} lies outside the cache directory")
    try:
        # Examined before it is opened: opening a FIFO to read waits for a writer.
        if not stat.S_ISREG(os.lstat(target).st_mode):
            raise UnreadableValueError(f"its value file {filename!r} is not a regular file")
        descriptor = os.open(target, _OPEN_FLAGS)
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UnreadableValueError(f"its value file {filename!r} is not a regular file")
            data = handle.read(entries.MAX_ENTRY_BYTES + 1)
        if len(data) > entries.MAX_ENTRY_BYTES:
            limit = entries.size(entries.MAX_ENTRY_BYTES)
            raise UnreadableValueError(f"its value file {filename!r} is larger than {limit}")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableValueError(f"its value file {filename!r} cannot be read: {error}") from None


def _inside(directory: str, file_path: Any) -> bool:
    try:
        root = Path(directory).resolve()
        target = (root / file_path).resolve()
    except (OSError, TypeError, ValueError):
        return False
    return target != root and target.is_relative_to(root)


class SafeDisk(diskcache.Disk):
    """diskcache's Disk, limited to text values and to files inside the directory."""

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnreadableValueError("its key is a pickle (which can run code when loaded)")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if not isinstance(value, str):
            raise TypeError(f"the response cache stores text only, not {type(value).__name__}")
        return super().store(value, read, key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> str:
        return value_text(Path(self._directory), (mode, filename, value))

    def remove(self, file_path: Any) -> None:
        if _inside(self._directory, file_path):
            super().remove(file_path)

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: Any = None) -> Any:
        # A committed symlink in place of a value file's subdirectory would put the
        # answer wherever it points.
        if not _inside(self._directory, full_path):
            raise OSError(f"the value file {full_path} would lie outside the cache directory")
        return super()._write(full_path, iterator, mode, encoding)


def writable(directory: Path) -> bool:
    """Whether this process may write ``cache.db`` and its log in ``directory``."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    database = directory / DB_NAME
    return not database.exists() or os.access(database, os.W_OK)


def sqlite_text(data: bytes) -> str | bytes:
    """SQLite text as str; text that is not UTF-8 stays bytes, which no reader accepts
    (the sqlite3 module would raise for the whole query instead)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


class StoreReader:
    """Rows of ``cache.db`` through a connection of its own, once its schema is checked.

    ``read_only`` (a replay), or a directory this process cannot write, never writes:
    immutable when no write-ahead log is pending (no ``-wal``/``-shm`` files appear),
    else read-only through the log. Otherwise the connection may write, though it
    never does: closing it as the last connection folds a log a killed run left into
    ``cache.db``. The first connection checks the files and the schema; a cache that
    fails is :class:`UntrustedCacheError` for every later call too.
    """

    def __init__(self, directory: Path, *, read_only: bool):
        self.directory = directory
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None
        self._untrusted: UntrustedCacheError | None = None
        #: A private copy of cache.db and its log, when the directory could not share it.
        self._snapshot: Path | None = None
        self._lock = threading.Lock()

    @property
    def exists(self) -> bool:
        # lexists: a dangling cache.db symlink is there (and refused), not absent.
        return os.path.lexists(self.directory / DB_NAME)

    def verify(self) -> None:
        """UntrustedCacheError unless the cache's files and schema are diskcache's own."""
        with self._lock:
            self._connection()

    def _connection(self) -> sqlite3.Connection:
        if self._untrusted is not None:
            raise self._untrusted
        if self._db is None:
            try:
                check_files(self.directory)
                present = {name for name in COMPANIONS if (self.directory / name).exists()}
                # Examined through a read-only connection: one that may write would fold
                # a committed log into the file on closing, even if the file is refused.
                db = self._connect(read_only=True, shared=not self.read_only)
                try:
                    check_schema(db)
                    if not self.read_only and writable(self.directory):
                        db.close()
                        db = self._connect(read_only=False)
                except BaseException:
                    # Closed at once: nothing of it is used, and it must not hold the
                    # file open while a refresh rebuilds it; the log and index files
                    # SQLite made to read it go too.
                    db.close()
                    _remove_new_companions(self.directory, present)
                    raise
            except UntrustedCacheError as error:
                self._untrusted = error
                raise
            self._db = db
        return self._db

    def _connect(self, *, read_only: bool, shared: bool = False) -> sqlite3.Connection:
        """A connection that may write, or one that never does: immutable when no log is
        pending, unless ``shared`` (other xdist workers may be writing the file)."""
        path = self.directory / DB_NAME
        wal = self.directory / f"{DB_NAME}-wal"
        pending = wal.is_file() and wal.stat().st_size > 0
        if not read_only:
            query = "mode=rw"
        elif not pending and not (shared and writable(self.directory)):
            query = "mode=ro&immutable=1"
        elif writable(self.directory) or (self.directory / f"{DB_NAME}-shm").is_file():
            query = "mode=ro"
        else:
            # SQLite reads a log only with its -shm index, which it cannot create in a
            # read-only directory: read a private copy of both instead.
            path, query = self._copy(path, wal), "mode=ro"
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?{query}", uri=True, check_same_thread=False
        )
        try:
            db.text_factory = sqlite_text
            db.execute("PRAGMA trusted_schema = OFF")
            db.execute("PRAGMA query_only = ON")
            # Entries are read once, in one pass: a page cache would only hold memory.
            db.execute("PRAGMA cache_size = 64")
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _copy(self, database: Path, wal: Path) -> Path:
        self._snapshot = Path(tempfile.mkdtemp(prefix="pytest-skills-cache-"))
        copy = self._snapshot / DB_NAME
        shutil.copyfile(database, copy)
        shutil.copyfile(wal, self._snapshot / wal.name)
        return copy

    def _execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor | None:
        """The query's cursor; None while another xdist worker is still creating the
        tables (see :func:`_being_created`). Call with ``_lock`` held."""
        try:
            return self._connection().execute(sql, parameters)
        except sqlite3.OperationalError as error:
            if _being_created(error):
                return None
            raise

    def _query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            cursor = self._execute(sql, parameters)
            return cursor.fetchall() if cursor is not None else []

    def rows(self) -> Iterator[tuple[str, Row]]:
        """Every row whose key is a plain string, streamed in batches; pickled keys are
        never decoded."""
        with self._lock:
            cursor = self._execute("SELECT key, mode, filename, value FROM Cache WHERE raw = 1")
        if cursor is None:
            return
        while True:
            with self._lock:
                batch = cursor.fetchmany(256)
            if not batch:
                return
            for key, mode, filename, value in batch:
                if isinstance(key, str):
                    yield key, (mode, filename, value)

    def row(self, key: str) -> Row | None:
        found = self._query(
            "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1", (key,)
        )
        return tuple(found[0]) if found else None  # type: ignore[return-value]

    def keys(self) -> list[str]:
        return [
            key
            for (key,) in self._query("SELECT key FROM Cache WHERE raw = 1")
            if isinstance(key, str)
        ]

    def close(self) -> None:
        """Close the connection; a cache found untrusted is examined afresh next time."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._untrusted = None
            if self._snapshot is not None:
                shutil.rmtree(self._snapshot, ignore_errors=True)
                self._snapshot = None


def _remove_new_companions(directory: Path, present: set[str]) -> None:
    """Remove the empty log and its index that reading a refused file created."""
    for name in set(COMPANIONS) - present:
        path = directory / name
        with contextlib.suppress(OSError):
            if name.endswith("-wal") and path.stat().st_size:
                continue  # something was written to it: not ours to remove
            path.unlink()


def _being_created(error: sqlite3.OperationalError) -> bool:
    """True when ``cache.db`` exists but has no table yet: another xdist worker has just
    created the file and diskcache is still making its tables. Nothing is recorded then."""
    return str(error).startswith("no such table")


def open_writer(directory: Path) -> diskcache.Cache:
    """diskcache on ``directory``; its schema, when it has one, was checked first."""
    directory.mkdir(parents=True, exist_ok=True)
    check_files(directory)
    return diskcache.Cache(str(directory), disk=SafeDisk, **WRITER_SETTINGS)


def fold_log(directory: Path) -> None:
    """Fold the write-ahead log into ``cache.db`` and remove it, unless another
    connection still uses it (that one's close will)."""
    if not (directory / f"{DB_NAME}-wal").exists():
        return
    with contextlib.suppress(UntrustedCacheError):
        check_files(directory)
        db = sqlite3.connect(str(directory / DB_NAME))
        try:
            db.execute("PRAGMA trusted_schema = OFF")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
