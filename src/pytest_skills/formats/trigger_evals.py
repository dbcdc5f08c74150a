"""Trigger evals: queries that should, or should not, make a model activate a skill.

Read here into frozen data, in the shapes found in the wild;
:mod:`pytest_skills.trigger_nodes` makes them items (one per query and model) asked in
the on-demand harness. Nothing here imports pytest, and nothing calls a model.

* a bare list of ``{query, should_trigger}`` (skill-creator's form), or of ``{id,
  prompt, should_trigger, rationale}``;
* ``{skill_name, queries: [...]}``;
* ``{threshold, repetitions, train: [...], validation: [...]}``: both splits are read,
  each query keeps its split.

The file lives in ``evals/`` and is named ``trigger-evals.json``,
``trigger_evals.json``, ``trigger-eval.json``, ``trigger-queries.json`` or
``eval_queries.json``. Its skill is found as an ``evals.json``'s is (``skill_md_for``),
by its own ``skill_name``, else by the ``skill_name`` of the ``evals.json`` beside it.
Other keys (``rationale``, ``expected_mode``, ``version``) are kept as metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_skills.discovery import TRIGGER_FILE_NAME
from pytest_skills.formats.agent_evals import skill_md_for
from pytest_skills.formats.data import FormatError, KeyPath, Skill, plain
from pytest_skills.formats.loading import read_data
from pytest_skills.formats.reader import FileReader
from pytest_skills.formats.skill_md import load_skill

FILE_NAME = TRIGGER_FILE_NAME
#: Where a file keeps its queries; the splits are read in this order.
LIST_KEYS = ("queries", "train", "validation", "test")
TOP_KEYS = frozenset({"skill_name", "threshold", "repetitions", *LIST_KEYS})
QUERY_KEYS = frozenset({"id", "query", "prompt", "should_trigger"})
#: The activation rate a query must reach (``true``) or stay below (``false``).
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class TriggerQuery:
    id: str
    text: str
    should_trigger: bool
    line: int | None = None
    #: ``train``, ``validation`` or ``test`` when the file splits its queries.
    split: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerSuite:
    path: Path
    skill: Skill
    queries: tuple[TriggerQuery, ...]
    threshold: float = DEFAULT_THRESHOLD
    #: The file's own number of trials per query, when it names one.
    repetitions: int | None = None
    warnings: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _lists(reader: FileReader, data: Any) -> list[tuple[KeyPath, list[Any], str | None]]:
    """Each list of queries: its key path, its items, its split."""
    if isinstance(data, list):
        return [((), data, None)]
    if not isinstance(data, Mapping):
        raise reader.fail("a trigger-eval file holds a list of queries, or 'queries' of them")
    found: list[tuple[KeyPath, list[Any], str | None]] = []
    for key in LIST_KEYS:
        if data.get(key) is None:
            continue
        if not isinstance(data[key], list):
            raise reader.fail(f"'{key}' must be a list of queries", (key,))
        found.append(((key,), data[key], None if key == "queries" else key))
    if not found:
        raise reader.fail(f"no queries: give a list of them under {', '.join(LIST_KEYS)}")
    return found


def _query(
    reader: FileReader, raw: Any, index: int, path: KeyPath, split: str | None
) -> TriggerQuery:
    what = f"query {index + 1}"
    if not isinstance(raw, Mapping):
        raise reader.fail(f"{what} must be a mapping with 'query' and 'should_trigger'", path)
    metadata = reader.metadata(raw, QUERY_KEYS, path, what)
    key = reader.one_of(raw, ("query", "prompt"), path)
    text = reader.prompt_text(raw, key, what, path)
    should = raw.get("should_trigger")
    if not isinstance(should, bool):
        raise reader.fail(f"{what} needs 'should_trigger': true or false", path)
    default = f"{split or 'query'}-{index + 1}"
    return TriggerQuery(
        id=reader.case_id(raw, "id", default, path),
        text=text,
        should_trigger=should,
        line=reader.line(path),
        split=split,
        metadata=metadata,
    )


def _number(reader: FileReader, data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise reader.fail(f"'{key}' must be a number", (key,))
    return float(value)


def _beside(path: Path) -> str | None:
    """The ``skill_name`` of the ``evals.json`` beside ``path``, if it names one."""
    try:
        data, _ = read_data(path.parent / "evals.json")
    except FormatError:
        return None
    name = data.get("skill_name") if isinstance(data, Mapping) else None
    return name.strip() if isinstance(name, str) and name.strip() else None


def load_triggers(path: Path) -> TriggerSuite:
    """The file's queries and skill; FormatError names the file, line and problem."""
    data, lines = read_data(path)
    reader = FileReader(path, lines)
    top = data if isinstance(data, Mapping) else {}
    metadata = reader.metadata(top, TOP_KEYS, (), "the top level")
    queries = tuple(
        _query(reader, raw, i, (*at, i), split)
        for at, items, split in _lists(reader, data)
        for i, raw in enumerate(items)
    )
    if not queries:
        reader.note("no queries to collect")
    seen: dict[str, int] = {}
    for i, query in enumerate(queries):
        first = seen.setdefault(query.id, i)
        if first != i:
            raise FormatError(
                path,
                f"query id {query.id!r} is used twice (queries {first + 1} and {i + 1})",
                query.line,
            )
    threshold = _number(reader, top, "threshold")
    if threshold is not None and not 0 < threshold <= 1:
        raise reader.fail("'threshold' is an activation rate: above 0, at most 1", ("threshold",))
    repetitions = _number(reader, top, "repetitions")
    if repetitions is not None and (repetitions < 1 or not repetitions.is_integer()):
        raise reader.fail("'repetitions' must be a positive whole number", ("repetitions",))
    name = top.get("skill_name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise reader.fail("'skill_name' must be a skill's name", ("skill_name",))
    skill = load_skill(skill_md_for(reader, name or _beside(path)))
    return TriggerSuite(
        path=path,
        skill=skill,
        queries=queries,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        repetitions=None if repetitions is None else int(repetitions),
        warnings=reader.warnings(),
        metadata={**metadata, **({"skill_name": plain(name)} if name else {})},
    )
