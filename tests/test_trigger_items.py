"""Trigger-eval files as items: activation shares, precision, recall, collisions, the
positive control, replay and xdist."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import pytest

from tests.loopback import LoopbackServer
from tests.loopback_tools import ToolModels
from tests.test_on_demand import make_skills

#: For the release skill: two should trigger (one words it like the weather skill's
#: description: a collision), two should not.
TRIGGERS = {
    "threshold": 0.5,
    "repetitions": 2,
    "train": [
        {
            "id": "codes",
            "query": "Which release codes do the Aurora products have?",
            "should_trigger": True,
        },
        {
            "id": "forecast",
            "query": "Weather forecasts for the cities of the Aurora release?",
            "should_trigger": True,
        },
    ],
    "validation": [
        {"id": "rain", "query": "Will it rain in Oslo tomorrow?", "should_trigger": False},
        {"id": "poem", "query": "Write a poem about spring.", "should_trigger": False},
    ],
}


def _project(root: Path) -> None:
    release, _ = make_skills(root)
    (release / "release.skill.yaml").unlink()
    (release / "evals").mkdir()
    (release / "evals" / "trigger-evals.json").write_text(json.dumps(TRIGGERS, indent=2))


def _session(pytester: pytest.Pytester, tmp_path: Path, model: str, *args: str):
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--skill-model",
        model,
        f"--skill-cache-dir={tmp_path / 'cache'}",
        f"--skill-report={tmp_path / 'report.json'}",
        *args,
    )


@pytest.mark.parametrize("model", ["anthropic:claude-activator", "openai:gpt-activator"])
def test_precision_recall_and_a_collision_then_replay(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path, model: str
) -> None:
    provider_env.responder = ToolModels()
    _project(pytester.path)
    result = _session(pytester, tmp_path, model, "-v")
    # The forecast query fires the weather skill instead: it fails, the rest pass.
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*trigger-evals.json::train-codes*PASSED*",
            "*trigger-evals.json::train-forecast*FAILED*",
        ]
    )
    flat = " ".join(result.stdout.str().split())  # however the note wraps
    assert (
        "trigger release: precision 100%, recall 50% over 4 queries; fired instead: weather (2)"
        in flat
    )
    result.stdout.fnmatch_lines(["*should activate release: it did in 0 of 2 trials*"])
    # 4 queries x 2 trials, plus the control's 2 trials: one turn each (activation stops
    # a trial; an answer without tools ends it).
    assert len(provider_env.calls) == 10
    report = json.loads((tmp_path / "report.json").read_text())
    (figures,) = report["models"]
    release = figures["trigger"]["skills"]["release"]
    assert release == {
        "precision": 1.0,
        "recall": 0.5,
        "valid": True,
        "queries": 4,
        "collisions": {"weather": 2},
    }
    assert figures["trigger"]["valid"] is True

    replay = _session(pytester, tmp_path, model, "--skill-cache=replay")
    replay.assert_outcomes(passed=3, failed=1)
    assert len(provider_env.calls) == 10
    again = json.loads((tmp_path / "report.json").read_text())["models"][0]["trigger"]
    assert again == figures["trigger"]


def test_splits_are_markers(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    provider_env.responder = ToolModels()
    _project(pytester.path)
    result = _session(
        pytester,
        tmp_path,
        "anthropic:claude-activator",
        "-m",
        "skill_trigger_validation",
        "--strict-markers",
    )
    result.assert_outcomes(passed=2)


def test_a_model_that_never_calls_tools_has_invalid_figures(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    """Never 0% recall: the positive control shows the harness cannot see a trigger."""
    provider_env.responder = ToolModels()
    _project(pytester.path)
    html = tmp_path / "report.html"
    result = _session(pytester, tmp_path, "anthropic:claude-never", f"--skill-html={html}")
    result.assert_outcomes(passed=2, failed=2)
    assert "train-codes" in html.read_text()
    text = " ".join(result.stdout.str().split())
    assert text.count("this model does not activate skills in this harness") == 1
    assert "recall 0%" not in text
    trigger = json.loads((tmp_path / "report.json").read_text())["models"][0]["trigger"]
    assert trigger["valid"] is False
    assert trigger["skills"]["release"]["recall"] is None
    assert trigger["skills"]["release"]["valid"] is False


def test_the_named_model_passes_its_control(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    provider_env.responder = ToolModels()
    _project(pytester.path)
    result = _session(pytester, tmp_path, "openai:gpt-named")
    result.assert_outcomes(passed=2, failed=2)
    trigger = json.loads((tmp_path / "report.json").read_text())["models"][0]["trigger"]
    assert trigger["valid"] is True and trigger["skills"]["release"]["recall"] == 0.0


def test_xdist_gives_the_same_figures(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    provider_env.responder = ToolModels()
    _project(pytester.path)
    serial = _session(pytester, tmp_path, "anthropic:claude-activator", "--skill-cache=off")
    serial.assert_outcomes(passed=3, failed=1)
    first = json.loads((tmp_path / "report.json").read_text())["models"][0]["trigger"]
    parallel = _session(
        pytester, tmp_path, "anthropic:claude-activator", "--skill-cache=off", "-n", "2"
    )
    parallel.assert_outcomes(passed=3, failed=1)
    second = json.loads((tmp_path / "report.json").read_text())["models"][0]["trigger"]
    assert first == second
