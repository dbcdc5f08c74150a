"""The on-disk response cache: a diskcache directory meant to be committed.

Entries are JSON text (never pickles) keyed by :attr:`Request.key`, written and read
back by the one format of ``entries.py``: anything else is an unreadable entry. A
cache whose ``cache.db`` is not diskcache's own is not used at all (``schema.py``),
except by a refresh or a prune, which rebuild it first (``rebuild.py``); see
``store.py`` for what a committed cache can and cannot do. Each entry keeps a
fingerprint of the key's fields, so that a replay miss can say what differs from the
nearest recorded entry for the same case and model. diskcache writes through SQLite
transactions, so concurrent xdist workers and a run killed mid-way never leave a
half-written entry.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pytest_skills.execution.cache_errors import (
    CacheError,
    Guard,
    SecretInEntryError,
    StopRecordingError,
    UnreadableEntryError,
    stop_reason,
    stops_recording,
    untrusted_message,
)
from pytest_skills.execution.entries import Entry, EntryRefusedError, decode, encode, normalised
from pytest_skills.execution.rebuild import rebuild
from pytest_skills.execution.secrets import find_secret, secret_values
from pytest_skills.execution.store import (
    DB_NAME,
    StoreReader,
    UnreadableValueError,
    UntrustedCacheError,
    fold_log,
    open_writer,
    value_text,
    writable,
)
from pytest_skills.models import Request, Response

__all__ = [
    "CacheError",
    "Entry",
    "EntryRefusedError",
    "ResponseCache",
    "SecretInEntryError",
    "UnreadableEntryError",
    "decode",
    "find_secret",
    "fingerprint",
    "normalised",
]

FIELD_LABELS = {
    "schema": "cache schema version",
    "provider": "provider",
    "model": "model id",
    "base_url": "base URL",
    "system": "skill text",
    "prompt": "case input",
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "seed": "seed",
    "trial": "trial index",
    "prompt_format": "prompt format",
    "reasoning": "reasoning",
}


def fingerprint(request: Request) -> dict[str, Any]:
    """The key's fields with long texts replaced by digests: small, comparable, readable."""
    fields = request.key_fields()
    for name in ("system", "prompt"):
        if fields[name] is not None:
            fields[name] = hashlib.sha256(fields[name].encode("utf-8")).hexdigest()[:16]
    return fields


_NOT_FETCHED: Any = object()


class ResponseCache:
    """Read and write recorded responses. Opened lazily: replay-free runs never touch disk.

    Reads go through a :class:`StoreReader` of our own (never diskcache's ``get``); the
    first write opens diskcache. A replay (``read_only``) never writes a byte, and a run
    that records nothing leaves ``cache.db`` as it was. :meth:`prefetch` reads the
    entries of many requests in one pass; a key it did not find is looked up again
    (unless read-only), so answers other xdist workers recorded since are used.

    A cache whose schema is not diskcache's own is refused whole (:func:`untrusted_message`);
    with ``rebuild_untrusted`` (refresh, prune) it is first rebuilt from the entries
    that check out, and ``announce`` says so. A directory this process cannot write is
    replayed from; the first answer it cannot record says why, and the answers after it
    are only counted (:attr:`unrecorded`), as are those after a full disk.
    """

    def __init__(
        self,
        directory: Path,
        *,
        read_only: bool = False,
        secrets: Mapping[str, str] | None = None,
        rebuild_untrusted: bool = False,
        announce: Callable[[str], None] | None = None,
    ):
        self.directory = directory
        #: Read here, on the constructing (main) thread; writes happen on pool threads.
        self.secrets = dict(secret_values() if secrets is None else secrets)
        self.read_only = read_only
        self.rebuild_untrusted = rebuild_untrusted
        self.announce = announce
        self._reader = StoreReader(directory, read_only=read_only)
        #: Entries read ahead by prefetch(): a response, the reason it is unreadable,
        #: or None (not recorded when prefetched). Each key is asked for once.
        self._fetched: dict[str, Response | UnreadableEntryError | None] = {}
        self._labels: dict[str, list[tuple[str, Mapping[str, Any]]]] | None = None
        self._writer: Any = None
        self._lock = threading.Lock()
        #: One write at a time in this process: SQLite would make the others wait anyway.
        self._write_lock = threading.Lock()
        self._vetted = False
        self._vet_lock = threading.Lock()
        #: Why nothing more is recorded this run (a read-only directory, a full disk).
        self._stopped: str | None = None
        self._unrecorded = 0

    @property
    def unrecorded(self) -> tuple[int, str] | None:
        """How many answers were not recorded after recording stopped, and why."""
        return (self._unrecorded, self._stopped) if self._stopped else None

    def _check_directory(self) -> bool:
        """True when there is a cache file to read; CacheError when the path is unusable."""
        if not self.directory.is_dir():
            # The directory itself or one above it may be a file: say so, not "no entries".
            blocker = next(p for p in (self.directory, *self.directory.parents) if p.exists())
            if not blocker.is_dir():
                raise CacheError(
                    f"the response cache cannot live at {self.directory}: {blocker} is a "
                    "file, not a directory; point --skill-cache-dir at a directory"
                )
            return False
        if not self._reader.exists:
            return False
        if self.rebuild_untrusted and not self._vetted:
            self._rebuild_if_untrusted()
        return True

    def _rebuild_if_untrusted(self) -> None:
        with self._vet_lock:
            if self._vetted:
                return
            try:
                self._reader.verify()
            except UntrustedCacheError:
                self._reader.close()  # nothing may hold the old file open while it goes
                rebuilt = rebuild(self.directory)
                if rebuilt is not None and self.announce is not None:
                    self.announce(
                        f"the response cache at {self.directory} was not one pytest-skills "
                        f"wrote ({rebuilt.problem}): rebuilt it from the {rebuilt.kept} "
                        f"entries that check out ({rebuilt.refused} refused)"
                    )
            self._vetted = True

    def prefetch(self, requests: Iterable[Request]) -> None:
        """Read the entries of ``requests`` in one pass over the table, decoding each as
        it streams by: one query instead of one per key, and no raw copy of the table."""
        with self._lock:
            wanted = {r.key for r in requests} - self._fetched.keys()
        if not wanted:
            return
        found: dict[str, Response | UnreadableEntryError | None] = dict.fromkeys(wanted)
        with self._guard("read"):
            if self._check_directory():
                for key, row in self._reader.rows():
                    if key in wanted:
                        found[key] = self._decoded(key, row)
        with self._lock:
            self._fetched.update(found)

    def _decoded(self, key: str, row: tuple[Any, Any, Any]) -> Response | UnreadableEntryError:
        try:
            return self._entry(key, row).response
        except UnreadableEntryError as error:
            return error

    def _writing(self) -> Any:
        with self._lock:
            if self._writer is None:
                if self.read_only:
                    raise CacheError(f"the response cache at {self.directory} is read-only")
                self._writer = self._open_writer()
            return self._writer

    def _open_writer(self) -> Any:
        if self.directory.is_dir() and not writable(self.directory):
            raise StopRecordingError(
                f"the response cache at {self.directory} is read-only here: its answers "
                "are replayed, but this run records none; record where it is writable"
            )
        try:
            self._check_directory()
            if self._reader.exists:
                self._reader.verify()
            return open_writer(self.directory)
        except UntrustedCacheError as problem:
            raise CacheError(untrusted_message(self.directory, problem)) from None
        except (OSError, sqlite3.Error) as error:
            if stops_recording(error):
                raise StopRecordingError(stop_reason(self.directory, error)) from None
            raise CacheError(
                f"cannot open the response cache at {self.directory}: {error}. "
                "Check its permissions, point --skill-cache-dir elsewhere, or delete the "
                "directory and record again (or run with --skill-cache=off)."
            ) from None

    def _guard(self, action: str) -> Any:
        return Guard(self.directory, action)

    def get(self, request: Request) -> Response | None:
        """The recorded response, None when there is none; UnreadableEntryError for an entry
        that is not ours to read, CacheError when the cache itself cannot be read."""
        key = request.key
        with self._lock:
            # Popped: the runner asks for each key once, and the response lives on there.
            found = self._fetched.pop(key, _NOT_FETCHED)
            if not self._fetched:
                self._fetched = {}  # a dict keeps its table when emptied: let it go
        if found is _NOT_FETCHED or (found is None and not self.read_only):
            # Not read ahead, or absent then: another xdist worker may have recorded it.
            with self._guard("read"):
                row = self._reader.row(key) if self._check_directory() else None
            found = None if row is None else self._decoded(key, row)
        if isinstance(found, UnreadableEntryError):
            raise found
        return found  # type: ignore[return-value]

    def _entry(self, key: str, row: tuple[Any, Any, Any]) -> Entry:
        try:
            return decode(key, value_text(self.directory, row))
        except (UnreadableValueError, ValueError) as error:
            raise UnreadableEntryError(self.directory, key, str(error)) from None

    def put(self, request: Request, response: Response, label: str, arm: str = "") -> None:
        """Record ``response`` as a replay will read it (see :func:`~.entries.encode`);
        ``arm`` names the arm that asked, for readers of the cache (never the key).

        SecretInEntryError or CacheError say why it was not recorded. When recording stops
        (a read-only directory, a full disk), the first answer's CacheError says so
        and later answers are only counted: one warning, not one per answer.
        """
        self.put_entry(request.key, fingerprint(request), response, label, arm)

    def put_entry(
        self, key: str, fields: Mapping[str, Any], response: Response, label: str, arm: str = ""
    ) -> None:
        """:meth:`put` for a request known by its key and fields: the answers of a
        provider batch, collected by a run that may not have planned them."""
        try:
            payload = encode(label, fields, normalised(response), arm)
        except EntryRefusedError as refused:
            raise CacheError(str(refused)) from None
        leaked = find_secret(payload, self.secrets)
        if leaked:
            raise SecretInEntryError(leaked)
        with self._write_lock:
            if self._stopped is not None:
                self._unrecorded += 1
                return
            try:
                with self._guard("write"):
                    try:
                        self._writing().set(key, payload)
                    except (OSError, sqlite3.Error) as error:
                        if stops_recording(error):
                            raise StopRecordingError(stop_reason(self.directory, error)) from None
                        raise
            except StopRecordingError as stop:
                self._stopped = str(stop)
                self._unrecorded += 1
                raise CacheError(
                    f"not cached: {stop}; the skills summary counts the answers not recorded"
                ) from None

    def put_texts(self, items: Iterable[tuple[str, str]]) -> int:
        """Write entries already in their stored form (``--skill-cache-merge``), all in
        one transaction: a merge stopped half-way leaves none of them. Each must be one
        :func:`decode` reads and hold no secret; CacheError says why not. How many."""
        checked = []
        for key, text in items:
            try:
                decode(key, text)
            except ValueError as error:
                raise CacheError(f"not cached: entry {key[:12]} is unreadable: {error}") from None
            leaked = find_secret(text, self.secrets)
            if leaked:
                raise SecretInEntryError(leaked)
            checked.append((key, text))
        if not checked:
            return 0
        with self._guard("write"), self._write_lock:
            store = self._writing()
            with store.transact():
                for key, text in checked:
                    store.set(key, text)
        return len(checked)

    def entries(self, skip: Container[str] = ()) -> Iterator[Entry]:
        """Every readable entry, except those whose key is in ``skip`` (never decoded)."""
        with self._guard("read"):
            rows = self._reader.rows() if self._check_directory() else iter(())
        while True:  # streamed, so a large cache is never held whole; each read guarded
            with self._guard("read"):
                item = next(rows, None)
            if item is None:
                return
            key, row = item
            if key in skip:
                continue
            try:
                yield self._entry(key, row)
            except UnreadableEntryError:
                continue  # it fails the item that asks for it, with the way out

    def keys(self) -> set[str]:
        with self._guard("read"):
            return set(self._reader.keys()) if self._check_directory() else set()

    def delete(self, keys: Iterable[str]) -> int:
        removed = 0
        with self._guard("write"), self._write_lock:
            store = self._writing()
            for key in keys:
                removed += bool(store.delete(key))
        return removed

    def explain_miss(self, request: Request, label: str) -> str:
        """Say what differs between ``request`` and the nearest entry for the same case."""
        if not self._check_directory():
            return f"no cache at {self.directory}: it has no {DB_NAME}"
        with self._lock:
            if self._labels is None:
                # Once, not per miss: a skill edit can make every item of a suite miss.
                labels: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
                for entry in self.entries():
                    labels.setdefault(entry.label, []).append((entry.key, entry.fields))
                self._labels = labels
            candidates = self._labels.get(label, [])
        wanted = fingerprint(request)
        best: list[str] | None = None
        for _, fields in candidates:
            differing = [name for name in FIELD_LABELS if fields.get(name) != wanted.get(name)]
            if best is None or len(differing) < len(best):
                best = differing
        if best is None:
            return "nothing is recorded for this case and model"
        details = []
        for name in best:
            details.append(
                FIELD_LABELS[name]
                if name in ("system", "prompt")
                else f"{FIELD_LABELS[name]} ({wanted.get(name)!r})"
            )
        return "the nearest recorded entry differs in: " + ", ".join(details)

    def release_thread(self) -> None:
        """Close the calling thread's connection (diskcache opens one per thread)."""
        if self._writer is not None:
            self._writer.close()

    def close(self) -> None:
        """Close every connection; after writes, fold the write-ahead log into cache.db
        so that the file alone holds every answer (it is the file that gets committed)."""
        self._reader.close()
        writer, self._writer = self._writer, None
        self._fetched, self._labels = {}, None
        if writer is not None:
            with self._guard("close"):
                writer.close()
                fold_log(self.directory)
