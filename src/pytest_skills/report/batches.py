"""What the summary says of provider batches (``--skill-batch``).

Items whose answers wait in a batch, or failed in one, are skipped, and each leaves a
:class:`BatchNote` per such call; under xdist the notes travel on the reports. Every
item runs in one process, so adding the notes up counts each call once, however many
workers looked at the batch. Answers a batch gave are counted from the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_skills.models import ErrorKind
from pytest_skills.report.records import ItemRecord

#: The report property a skipped item's notes travel in.
BATCH_PROPERTY = "skills_batch"


@dataclass(frozen=True)
class BatchNote:
    """One call of a skipped item: the batch it waits in or failed in, and why."""

    batch: str
    model: str
    kind: ErrorKind
    reason: str

    def to_json(self) -> list[str]:
        return [self.batch, self.model, self.kind.value, self.reason]

    @classmethod
    def from_json(cls, data: Any) -> BatchNote | None:
        if (
            not isinstance(data, list)
            or len(data) != 4
            or not all(isinstance(x, str) for x in data)
        ):
            return None
        try:
            kind = ErrorKind(data[2])
        except ValueError:
            return None
        return cls(data[0], data[1], kind, data[3]) if kind.batched else None


def notes_from_property(value: Any) -> list[BatchNote]:
    notes = [BatchNote.from_json(entry) for entry in value] if isinstance(value, list) else []
    return [note for note in notes if note is not None]


def batch_lines(notes: Sequence[BatchNote], records: Iterable[ItemRecord]) -> list[str]:
    """``skills: ...`` lines: answers collected, calls pending, calls that failed."""
    lines = []
    answered: dict[tuple[str, str], int] = {}
    for record in records:
        for result in record.results:
            if result.batch is not None:
                key = (result.batch, record.model)
                answered[key] = answered.get(key, 0) + 1
    for (batch, model), count in sorted(answered.items()):
        lines.append(f"skills: {count} answer(s) of {model} from batch {batch}, at batch price")
    pending = _grouped(n for n in notes if n.kind is ErrorKind.BATCH_PENDING)
    for (batch, model), group in pending.items():
        lines.append(
            f"skills: {len(group)} call(s) of {model} pending in batch {batch}: their items "
            "were skipped; run again to collect them (--skill-batch-wait waits for them)"
        )
    failed = _grouped(n for n in notes if n.kind is ErrorKind.BATCH_FAILED)
    for (batch, model), group in failed.items():
        lines.append(
            f"skills: {len(group)} call(s) of {model} did not succeed in batch {batch}; their "
            f"items were skipped; first: {group[0].reason}"
        )
    return lines


def _grouped(notes: Iterable[BatchNote]) -> Mapping[tuple[str, str], list[BatchNote]]:
    groups: dict[tuple[str, str], list[BatchNote]] = {}
    for note in notes:
        groups.setdefault((note.batch, note.model), []).append(note)
    return dict(sorted(groups.items()))
