"""Skill items: ids, one per case and model, skipping without a model, markers and selection."""

from __future__ import annotations

import json

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import write_skill
from tests.loopback import LoopbackServer
from tests.plugin_runs import ID, run

pytestmark = pytest.mark.usefixtures("provider_env")


def test_without_a_model_items_skip(pytester: pytest.Pytester, loopback: LoopbackServer) -> None:
    write_skill(pytester.path)
    result = run(pytester, "-rs", model=None)
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "skills: models: none (skill items skip)",
            "SKIPPED [[]2[]] demo/demo.skill.yaml: no skill model named: pass --skill-model SPEC*",
        ]
    )
    assert loopback.calls == []


def test_item_ids_are_path_case_and_model(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            f"demo/demo.skill.yaml::mentions-skill{ID}",
            f"demo/demo.skill.yaml::echoes{ID}",
        ]
    )
    assert "2 tests collected" in result.stdout.str()


def test_one_item_per_case_and_model(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester, "--collect-only", "-q", "--skill-model", "openai:gpt-4.1-mini")
    result.stdout.fnmatch_lines(
        [
            f"demo/demo.skill.yaml::mentions-skill{ID}",
            "demo/demo.skill.yaml::mentions-skill[[]openai:gpt-4.1-mini[]]",
            f"demo/demo.skill.yaml::echoes{ID}",
            "demo/demo.skill.yaml::echoes[[]openai:gpt-4.1-mini[]]",
        ]
    )
    assert "4 tests collected" in result.stdout.str()


def test_json_formats_collect_too(pytester: pytest.Pytester, loopback: LoopbackServer) -> None:
    directory = write_skill(pytester.path, "article")
    (directory / "skill_meta.json").write_text(
        json.dumps({"cases": [{"input": "Say it", "expected": {"contains": "skill: article"}}]})
    )
    directory = write_skill(pytester.path, "upskill")
    (directory / "skill_meta.json").write_text(
        json.dumps(
            {
                "metadata": {},
                "tests": [
                    {
                        "input": "Read it",
                        "context": {"files": {"notes.txt": "hello"}},
                        "expected": {"contains": ["notes.txt", "hello"]},
                    },
                ],
            }
        )
    )
    result = run(pytester, "-v", "-k", "case")
    result.assert_outcomes(passed=2, deselected=4)
    result.stdout.fnmatch_lines_random(
        [
            f"article/skill_meta.json::case-1{ID} PASSED*",
            f"upskill/skill_meta.json::case-1{ID} PASSED*",
        ]
    )
    # upskill's context files reach the model as fenced blocks after the input.
    assert "Read it\n\nFile `notes.txt`:\n```\nhello\n```" in {c.prompt for c in loopback.calls}


def test_not_skill_deselects_skill_items(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    write_skill(pytester.path)
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    result = run(pytester, "-m", "not skill", "--strict-markers")
    result.assert_outcomes(passed=1, deselected=2)
    assert loopback.calls == []  # deselected items plan no calls


def test_skill_marker_selects_and_is_registered(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    write_skill(pytester.path)
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    result = run(pytester, "-m", "skill", "--strict-markers")
    result.assert_outcomes(passed=2, deselected=1)
    assert result.ret == pytest.ExitCode.OK
    assert len(loopback.calls) == 4
    markers = run(pytester, "--markers")
    markers.stdout.fnmatch_lines(
        ["@pytest.mark.skill(path=None): an agent skill test run by pytest-skills*"]
    )


def test_keyword_selection_plans_only_selected_calls(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    write_skill(pytester.path)
    result = run(pytester, "-k", "echoes")
    result.assert_outcomes(passed=1, deselected=1)
    assert {call.prompt for call in loopback.calls} == {"Repeat after me"}
    assert len(loopback.calls) == 2
