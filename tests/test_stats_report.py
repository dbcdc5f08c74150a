"""The issue-23 examples end to end: the loopback server, the plugin, the JSON report.

Six cases the skill fixes give the same figures at 1 trial and at 5 identical trials
(the percentile bootstrap used to shrink the interval to [+100, +100]); two such
cases are inconclusive, whatever their interval (the verdict used to follow Newcombe's
interval while the exact test beside it said p = 0.5).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import pytest

from tests.conftest import HAIKU, write_skill
from tests.loopback import LoopbackServer


def _cases(count: int) -> str:
    lines = [
        f'  - {{id: fixed-{i}, input: question {i}, expect: {{contains: "skill: demo"}}}}'
        for i in range(count)
    ]
    return "cases:\n" + "\n".join(lines) + "\n"


def _model(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> dict[str, Any]:
    report = tmp_path / "report.json"
    result = pytester.runpytest(
        "--skill-model", HAIKU, "--skill-cache=off", "-p", "no:cacheprovider",
        f"--skill-report={report}", *args,
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK
    model: dict[str, Any] = json.loads(report.read_text())["models"][0]
    return model


def test_six_cases_keep_an_honest_interval_at_five_trials(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=_cases(6))
    one = _model(pytester, tmp_path, "--skill-trials", "1")
    five = _model(pytester, tmp_path, "--skill-trials", "5")
    assert len(provider_env.calls) == 6 * 2 + 6 * 2 * 5
    for model in (one, five):
        assert model["lift"] == 1.0 and model["verdict"] == "improves"
        assert model["p_value"] == pytest.approx(1 / 32)
    assert five["lift_ci"] == one["lift_ci"]
    low, high = five["lift_ci"]
    assert high == 1.0 and 0.3 < low < 0.5


def test_two_cases_are_inconclusive(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=_cases(2))
    model = _model(pytester, tmp_path)
    assert model["lift"] == 1.0 and model["p_value"] == 0.5
    assert model["verdict"] == "inconclusive"
    low, high = model["lift_ci"]
    assert low <= 0.0 < high
