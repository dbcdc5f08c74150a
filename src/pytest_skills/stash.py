"""What the plugin keeps on pytest's config and items, and the names of its fixture and
marker: light enough for the hooks every run calls."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_skills.report.batches import BatchNote
    from pytest_skills.report.records import ItemRecord

FIXTURE = "skill_model"
MARKER = "skill"
#: Trigger-eval splits, each a marker (``skill_trigger_train``) and a part of the id.
TRIGGER_SPLITS = ("train", "validation", "test")

#: A skill item's record, left by its run for the report hook.
RECORD_KEY: pytest.StashKey[ItemRecord] = pytest.StashKey()
#: The calls a skipped skill item waits for in a provider batch (or that failed in one).
BATCH_NOTES_KEY: pytest.StashKey[tuple[BatchNote, ...]] = pytest.StashKey()
#: Files named like skill test files that hold no cases (listed under -v).
NOT_COLLECTED_KEY = pytest.StashKey[list[Path]]()
