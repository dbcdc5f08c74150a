"""The on-disk response cache: a diskcache directory meant to be committed.

Entries are JSON text (never pickles) keyed by :attr:`Request.key`. Each entry keeps
a fingerprint of the key's fields, so that a replay miss can say what differs from
the nearest recorded entry for the same case and model. diskcache writes through
SQLite transactions, so concurrent xdist workers and a run killed mid-way never
leave a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

from pytest_skills.execution.secrets import find_secret, secret_values
from pytest_skills.models import Request, Response

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


class CacheError(Exception):
    """The cache directory cannot be used; the message says how to recover."""


class SecretInEntry(Exception):
    """Raised instead of writing an entry that holds the value of a secret variable."""

    def __init__(self, variable: str):
        super().__init__(
            f"not cached: the answer contains the value of ${variable}; secrets never reach disk"
        )
        self.variable = variable


def fingerprint(request: Request) -> dict[str, Any]:
    """The key's fields with long texts replaced by digests: small, comparable, readable."""
    fields = request.key_fields()
    for name in ("system", "prompt"):
        if fields[name] is not None:
            fields[name] = hashlib.sha256(fields[name].encode("utf-8")).hexdigest()[:16]
    return fields


@dataclass(frozen=True)
class Entry:
    key: str
    label: str
    fields: Mapping[str, Any]
    response: Response


class ResponseCache:
    """Read and write recorded responses. Opened lazily: replay-free runs never touch disk.

    diskcache's open alone rewrites its database file, which would dirty a committed
    cache on every run. So replays (``read_only``) never open it for writing, and with
    ``defer_writes`` a run reads through a read-only view until its first write.
    Deferring is for one process only: the view is a snapshot, fine while no other
    process writes (xdist workers open for writing at once).
    """

    def __init__(
        self,
        directory: Path,
        *,
        read_only: bool = False,
        defer_writes: bool = False,
        secrets: Mapping[str, str] | None = None,
    ):
        self.directory = directory
        #: Read here, on the constructing (main) thread; writes happen on pool threads.
        self.secrets = dict(secret_values() if secrets is None else secrets)
        self.read_only = read_only
        self.defer_writes = defer_writes
        self._reader: _ReadOnlyStore | None = None
        self._writer: Any = None
        self._lock = threading.Lock()

    def _reading(self) -> Any:
        """The store to read: the writer once open, else a read-only view (None: no file)."""
        if self._writer is not None:
            return self._writer
        if not (self.read_only or self.defer_writes):
            return self._writing()
        with self._lock:
            if self._reader is None and (self.directory / "cache.db").is_file():
                self._reader = _ReadOnlyStore(self.directory)
            return self._writer or self._reader

    def _writing(self) -> Any:
        with self._lock:
            if self._writer is None:
                if self.read_only:
                    raise CacheError(f"the response cache at {self.directory} is read-only")
                self._writer = self._open_writer()
                # From here on the writer sees everything; the view is only a snapshot.
                self._reader = None
            return self._writer

    def _open_writer(self) -> Any:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            return diskcache.Cache(str(self.directory), eviction_policy="none", size_limit=2**40)
        except (OSError, sqlite3.Error) as error:
            raise CacheError(
                f"cannot open the response cache at {self.directory}: {error}. "
                "Check its permissions, point --skill-cache-dir elsewhere, or delete the "
                "directory and record again (or run with --skill-cache=off)."
            ) from None

    def _guard(self, action: str) -> Any:
        return _Guard(self.directory, action)

    def get(self, request: Request) -> Response | None:
        with self._guard("read"):
            store = self._reading()
            raw = store.get(request.key) if store is not None else None
        if raw is None:
            return None
        return self._decode(request.key, raw).response

    def put(self, request: Request, response: Response, label: str) -> None:
        payload = json.dumps(
            {"label": label, "fields": fingerprint(request), "response": response.to_json()},
            sort_keys=True,
        )
        leaked = find_secret(payload, self.secrets)
        if leaked:
            raise SecretInEntry(leaked)
        with self._guard("write"):
            self._writing().set(request.key, payload)

    def _decode(self, key: str, raw: Any) -> Entry:
        try:
            data = json.loads(raw)
            return Entry(
                key,
                data.get("label", ""),
                data["fields"],
                Response.from_json(data["response"], cached=True),
            )
        except (TypeError, ValueError, KeyError) as error:
            raise CacheError(
                f"cache entry {key[:12]} in {self.directory} is unreadable ({error}); "
                "re-record it with --skill-cache=refresh"
            ) from None

    def entries(self, skip: Container[str] = ()) -> Iterator[Entry]:
        """Every entry, except those whose key is in ``skip`` (never read nor decoded)."""
        with self._guard("read"):
            store = self._reading()
            keys = [] if store is None else [k for k in store.iterkeys() if k not in skip]
        for key in keys:
            with self._guard("read"):
                raw = store.get(key)
            if raw is not None:
                yield self._decode(key, raw)

    def keys(self) -> set[str]:
        with self._guard("read"):
            store = self._reading()
            return set() if store is None else set(store.iterkeys())

    def delete(self, keys: Iterable[str]) -> int:
        removed = 0
        with self._guard("write"):
            store = self._writing()
            for key in keys:
                removed += bool(store.delete(key))
        return removed

    def explain_miss(self, request: Request, label: str) -> str:
        """Say what differs between ``request`` and the nearest entry for the same case."""
        wanted = fingerprint(request)
        best: tuple[int, list[str]] | None = None
        for entry in self.entries():
            if entry.label != label:
                continue
            differing = [
                name for name in FIELD_LABELS if entry.fields.get(name) != wanted.get(name)
            ]
            if best is None or len(differing) < best[0]:
                best = (len(differing), differing)
        if best is None:
            return "nothing is recorded for this case and model"
        details = []
        for name in best[1]:
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
        for store in (self._writer, self._reader):
            if store is not None:
                store.close()
        self._writer = self._reader = None


class _ReadOnlyStore:
    """The read side of a diskcache directory, opened without writing a byte.

    Follows diskcache 5's layout: table ``Cache`` keyed by (key, raw); string values
    are stored inline (mode 1) or, when large, in a file beside it (mode 3).
    """

    _MODE_RAW, _MODE_TEXT = 1, 3

    def __init__(self, directory: Path):
        self.directory = directory
        uri = (directory / "cache.db").resolve().as_uri()
        # immutable: no locks, no -wal/-shm files; nothing writes during a replay.
        self._db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._all: dict[str, tuple[int, str | None, Any]] | None = None

    def _rows(self) -> dict[str, tuple[int, str | None, Any]]:
        # One query for the whole table: a replay reads nearly every entry anyway,
        # and a query per key costs more than the row.
        with self._lock:
            if self._all is None:
                rows = self._db.execute(
                    "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 ORDER BY rowid"
                ).fetchall()
                self._all = {key: (mode, filename, value) for key, mode, filename, value in rows}
            return self._all

    def get(self, key: str) -> str | None:
        row = self._rows().get(key)
        if row is None:
            return None
        mode, filename, value = row
        if mode == self._MODE_TEXT and filename:
            return (self.directory / filename).read_text(encoding="UTF-8")
        return value

    def iterkeys(self) -> Iterator[str]:
        return iter(list(self._rows()))

    def close(self) -> None:
        self._db.close()


class _Guard:
    """Turn SQLite and OS errors into a CacheError that names the way out."""

    def __init__(self, directory: Path, action: str):
        self.directory = directory
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> bool:
        if isinstance(error, (sqlite3.Error, OSError)):
            raise CacheError(
                f"cannot {self.action} the response cache at {self.directory}: {error}. "
                "If it is corrupt, delete the directory and record again; to run without it, "
                "use --skill-cache=off."
            ) from None
        return False
