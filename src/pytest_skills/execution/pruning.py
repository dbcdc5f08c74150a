"""Cache entries a whole run did not use: counted, and removed on request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pytest_skills.execution.cache import ResponseCache
from pytest_skills.models import ModelSpec, cache_model
from pytest_skills.report.records import ItemRecord


def unused_entries(
    cache: ResponseCache,
    records: Sequence[ItemRecord],
    models: Iterable[ModelSpec],
) -> list[str]:
    """Keys of entries this run could have used and did not: same files, same models.

    Only meaningful after a run of the whole suite; the caller decides that.
    """
    used = {key for record in records for key in record.cache_keys}
    files = {record.file for record in records}
    wanted = {(m.provider, cache_model(m)) for m in models}
    return [
        entry.key
        for entry in cache.entries(skip=used)
        if entry.label.rpartition("::")[0] in files
        and (entry.fields.get("provider"), entry.fields.get("model")) in wanted
    ]
