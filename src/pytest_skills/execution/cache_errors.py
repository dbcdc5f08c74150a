"""How the response cache fails, in words that name the way out.

Cache-wide problems (:class:`CacheError`) fail every call that needs the cache, said
once in the summary; an :class:`UnreadableEntryError` fails only the items that need it;
:class:`StopRecordingError` ends recording for the run after one warning (a read-only
directory, a full disk), the answers after it only counted.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

from pytest_skills.errors import SkillsError
from pytest_skills.execution.store import UntrustedCacheError


class CacheError(SkillsError):
    """The cache directory cannot be used; the message says how to recover."""


class UnreadableEntryError(CacheError):
    """One entry that is not the JSON this package writes; recording it again fixes it."""

    def __init__(self, directory: Path, key: str, reason: str):
        super().__init__(
            f"cache entry {key[:12]} in {directory} is unreadable: {reason}. It was refused, "
            "not loaded; recording this answer again replaces it"
        )
        self.key = key
        self.reason = reason


class SecretInEntryError(SkillsError):
    """Raised instead of writing an entry that holds the value of a secret variable."""

    def __init__(self, variable: str):
        super().__init__(
            f"not cached: the answer contains the value of ${variable}; secrets never reach disk"
        )
        self.variable = variable


#: Write failures that end recording for the run: each later one would fail the same way.
_FULL = ("database or disk is full", "disk i/o error")
_READ_ONLY = ("readonly database", "read-only", "unable to open database file")
_STOP_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES})


def untrusted_message(directory: Path, problem: object) -> str:
    """What a cache that is not diskcache's own means, on three lines: the first for
    each item, the rest once in the summary."""
    return (
        f"the response cache at {directory} is not one pytest-skills wrote, so nothing was "
        f"read from it or written to it\n{problem}\nif you trust where it came from, run "
        "with --skill-cache=refresh to rebuild it from the entries that check out; "
        "otherwise delete the directory and record again"
    )


class StopRecordingError(CacheError):
    """Recording is over for this run: ``str()`` says why."""


def stops_recording(error: OSError | sqlite3.Error) -> bool:
    """Whether every later write would fail the same way (no space, no permission)."""
    if isinstance(error, OSError):
        return error.errno in _STOP_ERRNOS
    text = str(error).lower()
    return any(part in text for part in (*_FULL, *_READ_ONLY))


def stop_reason(directory: Path, error: OSError | sqlite3.Error) -> str:
    text = str(error).lower()
    full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if full or any(part in text for part in _FULL):
        return (
            f"the disk holding the response cache at {directory} is full ({error}): this "
            "run records no more answers; free space and run again to record them"
        )
    return (
        f"the response cache at {directory} cannot be written here ({error}): its answers "
        "are replayed, but this run records none; record where it is writable"
    )


class Guard:
    """Turn SQLite and OS errors into a CacheError that names the way out."""

    def __init__(self, directory: Path, action: str):
        self.directory = directory
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        if isinstance(error, UntrustedCacheError):
            raise CacheError(untrusted_message(self.directory, error)) from None
        if isinstance(error, (sqlite3.Error, OSError)):
            raise CacheError(
                f"cannot {self.action} the response cache at {self.directory}: {error}. "
                "If it is corrupt, delete the directory and record again; to run without it, "
                "use --skill-cache=off."
            ) from None
