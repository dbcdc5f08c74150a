"""The batches a cache directory is waiting for: one JSON file each, under ``batches/``.

A batch outlives the run that sent it, and the machine: the ledger lives beside the
answers it will become (``.skill-cache/batches/``), so any run that has the cache
directory and the provider's key can collect it. Each file names the batch, the model,
and for every request its cache key with what a cache entry needs besides the answer
(the case's label, the arm, the key's fields), so results are recorded even when the
suite changed since.

The files are read like the cache: as untrusted (a committed directory comes from
whoever opens a pull request). A file that does not check out is named once and left
alone. Runs and xdist workers take the directory's lock around a look-and-send, so a
batch is sent once however many processes plan it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_skills.errors import SkillsError

LEDGER_DIR = "batches"
VERSION = 1
#: The largest ledger file read: 100,000 requests of a few hundred bytes each.
MAX_LEDGER_BYTES = 64 * 2**20
_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_SCALARS = (str, int, float, bool, type(None))


class LedgerError(SkillsError):
    """A ledger file that is not one pytest-skills wrote; the message names it."""


@dataclass(frozen=True)
class Pending:
    """What a cache entry needs besides the answer."""

    label: str
    arm: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    #: The model as the run resolved it (``anthropic:claude-haiku-4-5``): who collects it.
    model: str
    #: The name the user typed (``haiku``), for messages.
    name: str
    submitted_at: str
    requests: Mapping[str, Pending]
    #: ``api``: sent to a provider's batch API; ``file``: written for vLLM's run-batch.
    via: str = "api"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "batch": self.batch_id,
            "model": self.model,
            "name": self.name,
            "submitted_at": self.submitted_at,
            "via": self.via,
            "requests": {
                key: {"label": p.label, "arm": p.arm, "fields": dict(p.fields)}
                for key, p in sorted(self.requests.items())
            },
        }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse(data: Any) -> BatchRecord:
    """The record ``data`` holds; LedgerError says what is wrong with it."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise LedgerError(f"it is not a version {VERSION} ledger object")
    texts = {name: data.get(name) for name in ("batch", "model", "name", "submitted_at", "via")}
    for name, value in texts.items():
        if not isinstance(value, str) or not value or len(value) > 1000:
            raise LedgerError(f"its '{name}' is not a short text")
    if not _BATCH_ID.match(texts["batch"] or ""):
        raise LedgerError(f"its batch id {texts['batch']!r} is not one a provider gives")
    if texts["via"] not in ("api", "file"):
        raise LedgerError(f"its 'via' is {texts['via']!r}, not api or file")
    requests = data.get("requests")
    if not isinstance(requests, dict) or not requests:
        raise LedgerError("its 'requests' is not an object of requests")
    pending: dict[str, Pending] = {}
    for key, entry in requests.items():
        if not _KEY.match(key):
            raise LedgerError(f"{key[:70]!r} is not a cache key")
        if not isinstance(entry, dict):
            raise LedgerError(f"request {key[:12]} is not an object")
        label, arm, fields = entry.get("label"), entry.get("arm", ""), entry.get("fields")
        if not isinstance(label, str) or not isinstance(arm, str) or not isinstance(fields, dict):
            raise LedgerError(f"request {key[:12]} lacks a label, an arm or fields")
        if not all(isinstance(v, _SCALARS) for v in fields.values()):
            raise LedgerError(f"request {key[:12]} has fields that are not plain values")
        pending[key] = Pending(label, arm, fields)
    return BatchRecord(
        batch_id=texts["batch"] or "",
        model=texts["model"] or "",
        name=texts["name"] or "",
        submitted_at=texts["submitted_at"] or "",
        requests=pending,
        via=texts["via"] or "api",
    )


class Ledger:
    """The ``batches/`` directory of one cache directory."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = cache_dir / LEDGER_DIR

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One look-and-send at a time across processes (where flock exists)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: two workers may then both send a batch
            yield
            return
        handle = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            os.close(handle)

    def path(self, record: BatchRecord) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", record.batch_id)
        return self.directory / f"{safe}.json"

    def records(self) -> tuple[list[BatchRecord], list[str]]:
        """Every readable record, oldest first, and a line per file that is not one."""
        if not self.directory.is_dir():
            return [], []
        found: list[BatchRecord] = []
        problems: list[str] = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(self._read(path))
            except LedgerError as error:
                problems.append(
                    f"{path}: not a batch pytest-skills sent ({error}); it is left alone: "
                    "delete it if it is not yours"
                )
        found.sort(key=lambda record: (record.submitted_at, record.batch_id))
        return found, problems

    def _read(self, path: Path) -> BatchRecord:
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_LEDGER_BYTES + 1)
        except OSError as error:
            raise LedgerError(f"it cannot be read: {error.strerror or error}") from None
        if len(raw) > MAX_LEDGER_BYTES:
            raise LedgerError(f"it is larger than {MAX_LEDGER_BYTES // 2**20} MB")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            raise LedgerError("it is not JSON text") from None
        return parse(data)

    def add(self, record: BatchRecord) -> Path:
        """Write ``record`` whole or not at all (a temporary file renamed)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(record)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return path

    def remove(self, record: BatchRecord) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(record).unlink()
