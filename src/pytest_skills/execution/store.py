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
* Before writing, the ``Settings`` table may only hold settings diskcache itself
  writes (some become SQLite pragmas, others attributes of the cache object), and
  ours override the file's.
* Every connection runs with ``trusted_schema`` off, so a view or trigger hidden in
  the file cannot call functions with side effects.

Replays read without writing a byte: immutably when no write-ahead log is pending,
else read-only through the log, so answers a killed run committed are seen.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import DEFAULT_SETTINGS, METADATA, MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT

DB_NAME = "cache.db"
#: A value file larger than this is refused rather than read into memory.
MAX_VALUE_FILE_BYTES = 64 * 2**20
#: diskcache's settings with ours: no eviction, no size limit worth the name.
WRITER_SETTINGS = {**DEFAULT_SETTINGS, "eviction_policy": "none", "size_limit": 2**40}

#: A row as stored: (mode, filename, value).
Row = tuple[Any, Any, Any]


class UnreadableValue(Exception):
    """A stored value this package refuses to read; ``str()`` says what it is."""


class UnknownSetting(Exception):
    """The file holds a setting diskcache never writes: it was not made by a cache."""


def value_text(directory: Path, row: Row) -> str:
    """The text a row holds, or UnreadableValue: never a pickle, never a file elsewhere."""
    mode, filename, value = row
    if mode == MODE_RAW:
        if isinstance(value, str):
            return value
        kind = "bytes" if isinstance(value, bytes) else type(value).__name__
        raise UnreadableValue(f"it holds {kind}, not text")
    if mode == MODE_TEXT:
        return _value_file(directory, filename)
    if mode == MODE_PICKLE:
        raise UnreadableValue("it is a pickle (which can run code when loaded)")
    if mode == MODE_BINARY:
        raise UnreadableValue("it holds binary data, not text")
    raise UnreadableValue(f"its storage mode {mode!r} is unknown")


def _value_file(directory: Path, filename: Any) -> str:
    if not isinstance(filename, str) or not filename:
        raise UnreadableValue("it names no value file")
    try:
        root = directory.resolve()
        target = (root / filename).resolve()
    except (OSError, ValueError) as error:  # ValueError: a NUL in the name
        raise UnreadableValue(f"its value file {filename!r} is unusable: {error}") from None
    if target == root or not target.is_relative_to(root):
        raise UnreadableValue(f"its value file {filename!r} lies outside the cache directory")
    try:
        if target.stat().st_size > MAX_VALUE_FILE_BYTES:
            raise UnreadableValue(
                f"its value file {filename!r} is larger than {MAX_VALUE_FILE_BYTES // 2**20} MB"
            )
        return target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableValue(f"its value file {filename!r} cannot be read: {error}") from None


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
            raise UnreadableValue("its key is a pickle (which can run code when loaded)")
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


class StoreReader:
    """Rows of ``cache.db`` through a connection of its own.

    ``read_only`` (a replay) never writes: immutable when no write-ahead log is
    pending (no ``-wal``/``-shm`` files appear), else read-only through the log.
    Otherwise the connection may write, though it never does: closing it as the
    last connection folds a log a killed run left into ``cache.db``.
    """

    def __init__(self, directory: Path, *, read_only: bool):
        self.directory = directory
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def exists(self) -> bool:
        return (self.directory / DB_NAME).is_file()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            path = self.directory / DB_NAME
            if self.read_only:
                wal = self.directory / f"{DB_NAME}-wal"
                pending = wal.is_file() and wal.stat().st_size > 0
                query = "mode=ro" if pending else "mode=ro&immutable=1"
            else:
                query = "mode=rw"
            db = sqlite3.connect(
                f"{path.resolve().as_uri()}?{query}", uri=True, check_same_thread=False
            )
            db.execute("PRAGMA trusted_schema = OFF")
            db.execute("PRAGMA query_only = ON")
            # Entries are read once, in one pass: a page cache would only hold memory.
            db.execute("PRAGMA cache_size = 64")
            self._db = db
        return self._db

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

    def check_settings(self) -> None:
        """UnknownSetting unless every setting is one diskcache writes."""
        known = set(DEFAULT_SETTINGS) | set(METADATA)
        try:
            names = [name for (name,) in self._query("SELECT key FROM Settings")]
        except sqlite3.OperationalError:  # unreadable: opening diskcache will say why
            return
        for name in names:
            if name not in known:
                raise UnknownSetting(name)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _being_created(error: sqlite3.OperationalError) -> bool:
    """True when ``cache.db`` exists but has no table yet: another xdist worker has just
    created the file and diskcache is still making its tables. Nothing is recorded then."""
    return str(error).startswith("no such table")


def open_writer(directory: Path) -> diskcache.Cache:
    directory.mkdir(parents=True, exist_ok=True)
    return diskcache.Cache(str(directory), disk=SafeDisk, **WRITER_SETTINGS)


def fold_log(directory: Path) -> None:
    """Fold the write-ahead log into ``cache.db`` and remove it, unless another
    connection still uses it (that one's close will)."""
    if not (directory / f"{DB_NAME}-wal").exists():
        return
    db = sqlite3.connect(str(directory / DB_NAME))
    try:
        db.execute("PRAGMA trusted_schema = OFF")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
