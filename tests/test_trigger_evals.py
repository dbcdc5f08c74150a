"""Trigger-eval files in the shapes found in the wild, read into queries (the on-demand
arm, issue 21, makes them items)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_skills.discovery import is_trigger_file
from pytest_skills.formats import FormatError
from pytest_skills.formats.trigger_evals import load_triggers
from tests.test_compat import skill, write

QUERIES = [
    {"query": "Plan the rollout", "should_trigger": True},
    {"query": "Hi", "should_trigger": False},
]


@pytest.mark.parametrize(
    ("name", "data", "splits"),
    [
        ("trigger-evals.json", QUERIES, [None, None]),
        (
            "trigger-evals.json",
            [{"id": "a", "prompt": "Plan it", "should_trigger": True, "rationale": "r"}],
            [None],
        ),
        ("trigger-eval.json", {"skill_name": "demo", "queries": QUERIES}, [None, None]),
        ("eval_queries.json", QUERIES, [None, None]),
        (
            "trigger_evals.json",
            {"threshold": 0.6, "repetitions": 3, "train": QUERIES, "validation": QUERIES[:1]},
            ["train", "train", "validation"],
        ),
    ],
)
def test_the_shapes_in_the_wild(
    tmp_path: Path, name: str, data: object, splits: list[str | None]
) -> None:
    skill(tmp_path / "demo")
    path = write(tmp_path / "demo" / "evals" / name, data)
    assert is_trigger_file(path)
    suite = load_triggers(path)
    assert [q.split for q in suite.queries] == splits
    assert suite.skill.name == "demo"
    assert suite.queries[0].should_trigger is True
    if isinstance(data, dict) and "threshold" in data:
        assert (suite.threshold, suite.repetitions) == (0.6, 3)
        assert [q.id for q in suite.queries] == ["train-1", "train-2", "validation-1"]


def test_the_skill_named_by_the_evals_json_beside_it(tmp_path: Path) -> None:
    skill(tmp_path / "repo" / "cleanup")
    write(tmp_path / "repo" / "evals" / "evals.json", {"skill_name": "cleanup", "evals": []})
    path = write(tmp_path / "repo" / "evals" / "trigger-evals.json", QUERIES)
    assert load_triggers(path).skill.name == "cleanup"


def test_the_only_skill_in_skills(tmp_path: Path) -> None:
    skill(tmp_path / "repo" / "skills" / "chain")
    path = write(tmp_path / "repo" / "evals" / "trigger-evals.json", QUERIES)
    assert load_triggers(path).skill.name == "chain"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [{"query": "x", "should_trigger": "yes"}],
            "query 1 needs 'should_trigger': true or false",
        ),
        ({"threshold": 2, "queries": QUERIES}, "'threshold' is an activation rate"),
        ({"repetitions": 0.5, "queries": QUERIES}, "'repetitions' must be a positive whole"),
        ({"version": 1}, "no queries"),
        ([{"id": "a", **QUERIES[0]}, {"id": "a", **QUERIES[1]}], "query id 'a' is used twice"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path: Path, data: object, message: str) -> None:
    skill(tmp_path / "demo")
    path = write(tmp_path / "demo" / "evals" / "trigger-evals.json", data)
    with pytest.raises(FormatError, match=message):
        load_triggers(path)


def test_other_files_in_evals_are_not_trigger_files(tmp_path: Path) -> None:
    assert not is_trigger_file(tmp_path / "evals" / "benchmark.json")
    assert not is_trigger_file(tmp_path / "evals" / "evals.json")
    assert not is_trigger_file(tmp_path / "other" / "trigger-evals.json")
