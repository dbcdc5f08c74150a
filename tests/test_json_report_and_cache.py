"""The JSON report, and a cache directory that replays a second run (and CI switching to replay)."""

from __future__ import annotations

from pathlib import Path

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from pytest_skills.models import ALIASES_CHECKED, DEFAULT_ALIASES
from tests.conftest import HAIKU, write_skill
from tests.loopback import LoopbackServer
from tests.plugin_runs import read_report, run

pytestmark = pytest.mark.usefixtures("provider_env")


def test_json_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    write_skill(pytester.path)
    report_path = tmp_path / "out" / "skills.json"
    result = run(pytester, "--skill-report", str(report_path), model="haiku")
    result.assert_outcomes(passed=2)
    report = read_report(report_path)

    assert report["version"] == 2  # arms: each result names its arm
    (model,) = report["models"]
    assert model["model"] == "haiku"
    # What the alias meant on this run, and which model the provider says answered.
    assert model["resolved"] == DEFAULT_ALIASES["haiku"]
    assert model["reported_models"] == [DEFAULT_ALIASES["haiku"].partition(":")[2]]
    assert report["settings"]["models"] == [
        {"model": "haiku", "resolved": DEFAULT_ALIASES["haiku"]}
    ]
    assert report["settings"]["aliases_checked"] == ALIASES_CHECKED
    assert model["cases"] == 2
    assert {k: model["with_skill"][k] for k in ("passed", "total", "rate")} == {
        "passed": 2,
        "total": 2,
        "rate": 1.0,
    }
    assert {k: model["baseline"][k] for k in ("passed", "total", "rate")} == {
        "passed": 1,
        "total": 2,
        "rate": 0.5,
    }
    for condition in ("with_skill", "baseline"):
        low, high = model[condition]["ci"]
        assert 0.0 <= low <= model[condition]["rate"] <= high <= 1.0
    assert model["lift"] == pytest.approx(0.5)
    low, high = model["lift_ci"]
    assert -1.0 <= low < 0.5 < high <= 1.0
    assert model["p_value"] == pytest.approx(1.0)  # one discordant pair: exact McNemar
    # Word counts on the loopback: the skill block adds tokens to every with-skill call.
    assert model["tokens"]["with_skill"] > model["tokens"]["baseline"] > 0

    results = report["results"]
    assert len(results) == 4
    assert set(results[0]) >= {
        "nodeid",
        "skill",
        "case",
        "model",
        "condition",
        "trial",
        "passed",
        "output",
        "cached",
        "usage",
        "latency_s",
    }
    by_key = {(r["case"], r["condition"]): r for r in results}
    assert set(by_key) == {
        (case, condition)
        for case in ("mentions-skill", "echoes")
        for condition in ("with_skill", "baseline")
    }
    mentions = by_key[("mentions-skill", "with_skill")]
    assert mentions["nodeid"] == "demo/demo.skill.yaml::mentions-skill[haiku]"
    assert mentions["skill"] == "demo"
    assert mentions["model"] == "haiku"
    assert mentions["trial"] == 0
    assert mentions["passed"] is True
    assert mentions["output"] == "echo: Tell me about the topic | skill: # Skill: demo"
    assert mentions["cached"] is False
    assert mentions["usage"]["output_tokens"] == 11  # words in the output
    assert mentions["latency_s"] >= 0
    assert by_key[("mentions-skill", "baseline")]["passed"] is False
    assert by_key[("mentions-skill", "baseline")]["output"] == "echo: Tell me about the topic"
    assert all("cache_key" not in r for r in results)


def test_cache_dir_replays_a_second_run(
    pytester: pytest.Pytester, loopback: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path)
    cache_args = (
        "--skill-model",
        HAIKU,
        "-p",
        "no:cacheprovider",
        "--skill-cache-dir",
        str(tmp_path / "cache"),
    )
    first = pytester.runpytest(*cache_args)
    first.assert_outcomes(passed=2)
    report = tmp_path / "r.json"
    second = pytester.runpytest(*cache_args, "--skill-report", str(report))
    second.assert_outcomes(passed=2)
    assert len(loopback.calls) == 4  # the second run was served from the cache
    second.stdout.fnmatch_lines(["skills: 4 calls: 0 live, 4 from the cache, 0 failed (*)"])
    assert all(r["cached"] for r in read_report(report)["results"])


def test_ci_switches_the_default_cache_mode_to_replay(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    loopback: LoopbackServer,
) -> None:
    monkeypatch.setenv("CI", "true")
    write_skill(pytester.path)
    result = pytester.runpytest(
        "--skill-model",
        HAIKU,
        "-p",
        "no:cacheprovider",
        "--skill-cache-dir",
        str(tmp_path / "empty"),
        "--no-skill-baseline",
    )
    result.stdout.fnmatch_lines(["skills: cache replay (CI is set) at *"])
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*not in the cache*"])
    assert loopback.calls == []
