"""Merge the recordings of other cache directories into this run's: ``--skill-cache-merge``.

CI shards record their parts of a suite into caches of their own; merged, the caches
replay the whole suite. Each source comes from another job's artifact, so it is
trusted no more than a committed cache: every source is checked before anything is
written (a missing directory, a file that is not a cache, or a schema that is not
diskcache's own stops the merge, and nothing is merged), and each entry is read as a
replay reads it (``store.py``, ``entries.py``). An entry a replay would refuse, or one
that holds the value of a secret variable, is refused and counted, never copied.

An entry is copied as it was stored, byte for byte: when it was recorded and how long
it took stay the shard's. A key this cache already holds is kept once when the answer
is the same (text, token counts, stop reason, reasoning, tool calls and extra facts;
not when or how fast it was recorded, nor what the provider's prompt cache held then),
and when the answer differs this cache's answer is kept and the entry listed. Sources
merge in the order given, so among sources that disagree the first one wins. Each
source's entries are written in one transaction through the cache's own writer
(:meth:`ResponseCache.put_texts`); closing it folds the write-ahead log into
``cache.db``, the file that gets committed. No pytest import here.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_skills.errors import SkillsError
from pytest_skills.execution.cache import CacheError, ResponseCache, SecretInEntryError
from pytest_skills.execution.dump import one_line
from pytest_skills.execution.entries import Entry, decode
from pytest_skills.execution.schema import DB_NAME, UntrustedCacheError
from pytest_skills.execution.secrets import find_secret, secret_values
from pytest_skills.execution.store import StoreReader, UnreadableValueError, value_text, writable
from pytest_skills.models import Response


class MergeError(SkillsError):
    """The merge cannot be made; ``str()`` says why and what to do. Nothing was merged
    from the source it names."""


@dataclass(frozen=True)
class Conflict:
    """A key both caches hold with different answers: this cache's answer was kept."""

    key: str
    label: str
    model: str
    arm: str


@dataclass(frozen=True)
class Refused:
    key: str
    reason: str


@dataclass(frozen=True)
class Merged:
    """What one source gave."""

    source: Path
    new: int
    identical: int
    conflicts: tuple[Conflict, ...]
    refused: tuple[Refused, ...]

    def lines(self) -> list[str]:
        """The summary line, then one line per conflicting and per refused entry."""
        lines = [
            f"merged {self.new} new, {self.identical} identical, {len(self.conflicts)} "
            f"conflicting (kept this cache's), {len(self.refused)} refused from {self.source}"
        ]
        for conflict in self.conflicts:
            arm = conflict.arm or "(not recorded)"
            lines.append(
                f"  conflicting: {one_line(conflict.label)} · {one_line(conflict.model)} · arm "
                f"{one_line(arm)} (entry {one_line(conflict.key[:12])})"
            )
        for refused in self.refused:
            lines.append(
                f"  refused: entry {one_line(refused.key[:12])}: {one_line(refused.reason)}"
            )
        return lines


def merge(
    destination: Path, sources: Sequence[Path], secrets: Mapping[str, str] | None = None
) -> list[Merged]:
    """Merge every source's entries into the cache at ``destination`` (created when
    absent); MergeError before anything is written when a source or the destination
    cannot be used."""
    secrets = dict(secret_values() if secrets is None else secrets)
    directories = [_source_directory(source, destination) for source in sources]
    for directory in directories:
        _verify(directory)
    if destination.is_dir() and not writable(destination):
        raise MergeError(
            f"the response cache at {destination} cannot be written here: nothing was "
            "merged; merge into a directory this user can write (--skill-cache-dir)"
        )
    cache = ResponseCache(destination, secrets=secrets)
    try:
        try:
            held = {entry.key: entry for entry in cache.entries()}
        except CacheError as error:
            raise MergeError(f"nothing was merged: {error}") from None
        return [_merge_one(cache, held, directory, secrets) for directory in directories]
    finally:
        try:
            cache.close()
        except CacheError as error:
            raise MergeError(str(error)) from None


def _source_directory(source: Path, destination: Path) -> Path:
    if source.name == DB_NAME and source.is_file():
        source = source.parent  # its directory: value files of large answers are there
    if not source.exists():
        raise MergeError(
            f"{source} does not exist: nothing was merged; name the cache directories to "
            f"merge (each holds a {DB_NAME})"
        )
    if not source.is_dir():
        raise MergeError(
            f"{source} is not a directory: nothing was merged; name cache directories, "
            f"each holding a {DB_NAME}"
        )
    if not os.path.lexists(source / DB_NAME):
        raise MergeError(
            f"{source} holds no {DB_NAME}, so it is not a response cache: nothing was merged"
        )
    try:
        same = source.resolve() == destination.resolve()
    except OSError:
        same = False
    if same:
        raise MergeError(
            f"{source} is this run's own cache directory (--skill-cache-dir): nothing was "
            "merged; name the other caches to merge into it"
        )
    return source


def _verify(directory: Path) -> None:
    reader = StoreReader(directory, read_only=True)
    try:
        reader.verify()
    except UntrustedCacheError as error:
        raise MergeError(
            f"the cache at {directory} is not one pytest-skills wrote ({error}): nothing was "
            "merged; record that part of the suite again, or leave it out"
        ) from None
    except (sqlite3.Error, OSError) as error:
        raise MergeError(
            f"the cache at {directory} cannot be read ({error}): nothing was merged"
        ) from None
    finally:
        reader.close()


def _merge_one(
    cache: ResponseCache, held: dict[str, Entry], source: Path, secrets: Mapping[str, str]
) -> Merged:
    new: list[tuple[str, str]] = []
    added: dict[str, Entry] = {}
    identical = 0
    conflicts: list[Conflict] = []
    refused: list[Refused] = []
    reader = StoreReader(source, read_only=True)
    try:
        for key, row in reader.rows():
            try:
                text = value_text(source, row)
                entry = decode(key, text)
            except (UnreadableValueError, ValueError) as error:
                refused.append(Refused(key, f"unreadable: {error}"))
                continue
            leaked = find_secret(text, secrets)
            if leaked:
                refused.append(Refused(key, f"it holds the value of ${leaked}"))
                continue
            kept = held.get(key)
            if kept is None:
                # Also when this cache's entry for the key is unreadable: the source's mends it.
                new.append((key, text))
                added[key] = entry
            elif _answer(kept.response) == _answer(entry.response):
                identical += 1
            else:
                conflicts.append(Conflict(key, kept.label, _model(kept), kept.arm))
    except UntrustedCacheError as error:
        raise MergeError(
            f"the cache at {source} is not one pytest-skills wrote ({error})"
        ) from None
    except (sqlite3.Error, OSError) as error:
        raise MergeError(f"the cache at {source} cannot be read ({error})") from None
    finally:
        reader.close()
    try:
        cache.put_texts(new)
    except (CacheError, SecretInEntryError) as error:
        raise MergeError(f"nothing was merged from {source}: {error}") from None
    held.update(added)
    # Listed in a stable order, as the dump lists entries: not the order of the rows.
    conflicts.sort(key=lambda c: (c.label, c.model, c.arm, c.key))
    refused.sort(key=lambda r: r.key)
    return Merged(source, len(new), identical, tuple(conflicts), tuple(refused))


def _model(entry: Entry) -> str:
    return f"{entry.fields.get('provider')}:{entry.fields.get('model')}"


def _answer(response: Response) -> tuple[Any, ...]:
    """What makes two recordings the same answer: not when or how fast they were made,
    nor how the provider's prompt cache split the input between read, written and new
    tokens (its state at the time, not the answer's); the input's total counts."""
    usage = response.usage
    return (
        response.text,
        usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
        usage.output_tokens,
        usage.reasoning_tokens,
        response.stop_reason,
        response.reported_model,
        response.reasoning,
        response.tool_calls,
        json.dumps(dict(response.extra), sort_keys=True, default=str),
    )
