"""Problems that many answers share, each said once with the one command that fixes it.

A missing key fails every call of a model; an edited SKILL.md makes every replay of
its cases miss. Items still fail with a short reason; the summary groups the causes.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_skills.models import ErrorKind
from pytest_skills.report.records import ItemRecord

#: Problems one recording run fixes, and the cache mode that run needs.
_RERECORD_MODES = {ErrorKind.REPLAY_MISS: "auto", ErrorKind.UNREADABLE_ENTRY: "refresh"}
#: More files than this and the re-record command names the run's directories instead.
MAX_FILES_IN_COMMAND = 4


@dataclass(frozen=True)
class Problem:
    model: str
    kind: ErrorKind
    #: Distinct calls affected (one call may serve several items).
    calls: int
    #: The message (for replay misses: the command that records them all).
    message: str
    #: The one command that fixes it, when there is one.
    command: str | None = None

    def lines(self) -> list[str]:
        """The first line names the model and the count; the rest say how to fix it."""
        first, *rest = self.message.splitlines() or [""]
        head = f"{self.model}: {self.calls} {self.kind.noun}: {first}"
        details = [f"    {line.strip()}" for line in rest if line.strip()]
        return [head, *details, *([f"    {self.command}"] if self.command else [])]


def rerecord_command(model: str, files: Sequence[str], mode: str = "auto") -> str:
    """A run that records every missing answer of ``model`` in ``files`` (``refresh``:
    records them all again, replacing unreadable entries)."""
    targets = sorted(set(files))
    if len(targets) > MAX_FILES_IN_COMMAND:
        targets = sorted({target.rpartition("/")[0] or "." for target in targets})
    paths = " ".join(shlex.quote(target) for target in targets)
    return f"pytest {paths} --skill-model {shlex.quote(model)} --skill-cache={mode}"


def find_problems(records: Sequence[ItemRecord]) -> list[Problem]:
    """Group failed calls by model, kind and message (replay misses by model alone)."""
    keys: dict[tuple[str, ErrorKind, str], set[str]] = defaultdict(set)
    files: dict[tuple[str, ErrorKind], set[str]] = defaultdict(set)
    for record in records:
        for result in record.results:
            if result.error is None or result.error_kind is None:
                continue
            if result.error_kind in _RERECORD_MODES:
                message = ""
                files[(record.model, result.error_kind)].add(record.file)
            else:
                message = result.error
            keys[(record.model, result.error_kind, message)].add(result.cache_key)
    problems = []
    for (model, kind, message), calls in sorted(keys.items()):
        if kind in _RERECORD_MODES:
            problems.append(
                Problem(
                    model,
                    kind,
                    len(calls),
                    "record them with the model reachable:",
                    rerecord_command(model, sorted(files[(model, kind)]), _RERECORD_MODES[kind]),
                )
            )
        else:
            problems.append(Problem(model, kind, len(calls), message))
    return problems
