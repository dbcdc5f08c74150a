"""Issue 14's "done when": one run on an OpenAI reasoning model, an Anthropic thinking
model and a Hugging Face GGUF, against services that behave like the real ones, where
a reasoning model's discarded guesses never decide a check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hf_layout import ROOT, gemma_model_file, hf_cache, hf_env
from tests.loopback import Call, LoopbackServer

SKILL = """\
---
name: h100
description: Compute capabilities of NVIDIA GPUs.
---
H100 has compute capability 9.0. Write 9.0, never sm_80.
"""
CASES = """\
defaults: {max_tokens: 24}
cases:
  - id: capability
    input: Which compute capability does H100 have?
    expect: {contains: "9.0", not_contains: sm_80}
"""


def reasoning_model(call: Call) -> str:
    """Thinks aloud first; each condition's discarded guess would flip its verdict."""
    if call.system:
        return "<think>Is it sm_80? No: the skill says 9.0.</think>H100 is 9.0."
    return "<think>Maybe 9.0?</think>It is sm_80."


def run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def gemma_file() -> Path:
    return gemma_model_file()


@pytest.mark.gguf
def test_todays_models_run_green_and_reasoning_never_decides_a_check(
    tmp_path: Path,
    gemma_file: Path,
) -> None:
    hf_cache(tmp_path / "hf", "google/gemma-3-270m-GGUF", {"gemma-3-270m-q4_k_m.gguf": gemma_file})
    suite = tmp_path / "h100"
    suite.mkdir()
    (suite / "SKILL.md").write_text(SKILL)
    (suite / "h100.skill.yaml").write_text(CASES)
    report = tmp_path / "report.json"

    with LoopbackServer(reasoning_model, reasoning_models={"prod-deployment"}) as server:
        deployment = f"openai:prod-deployment@{server.openai_url}"
        models = [
            "openai:gpt-5.4-mini",
            "anthropic:claude-sonnet-5-5",
            "hf:google/gemma-3-270m-GGUF:Q4_K_M",
            deployment,
        ]
        env = {
            **hf_env(tmp_path / "hf"),
            "PYTHONPATH": str(ROOT / "src"),
            "PYTEST_ADDOPTS": "",
            "ANTHROPIC_API_KEY": "test-key-0000",
            "ANTHROPIC_BASE_URL": server.url,
            "OPENAI_API_KEY": "test-key-1111",
            "OPENAI_BASE_URL": server.openai_url,
        }
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(suite)]
        command += ["--skill-reasoning=high", f"--skill-report={report}"]
        for model in models:
            command += ["--skill-model", model]
        live = run(command, env, tmp_path)
        calls = server.calls

    out = live.stdout
    assert live.returncode == 0, out + live.stderr
    assert "4 passed" in out
    # Known up front, said once in the header:
    assert (
        "skills: openai:gpt-5.4-mini: sends max_completion_tokens (max_tokens + 16384 for "
        "reasoning), no temperature, reasoning_effort high"
    ) in out
    assert (
        "skills: anthropic:claude-sonnet-5-5: sends adaptive thinking, effort high, "
        "max_tokens + 16384"
    ) in out
    # Learned from the deployment's 400s, said once in the summary, not per call:
    assert out.count("the server refused max_tokens: sent max_completion_tokens instead") == 1
    assert out.count("the server refused temperature: not sent") == 1
    refused = [c for c in calls if "max_tokens" in c.body and c.model == "prod-deployment"]
    assert len(refused) == 1

    results = json.loads(report.read_text())["results"]
    by_model = {(r["model"], r["condition"]): r for r in results}
    for model in (models[0], models[1], deployment):
        with_skill, baseline = by_model[model, "with_skill"], by_model[model, "baseline"]
        # The with-skill guess "sm_80" and the baseline guess "9.0" are discarded.
        assert with_skill["passed"] is True and with_skill["output"] == "H100 is 9.0."
        assert baseline["passed"] is False and baseline["output"] == "It is sm_80."
        assert with_skill["usage"]["reasoning_tokens"] > 0
    claude = by_model[models[1], "with_skill"]
    assert claude["reasoning"] == "Is it sm_80? No: the skill says 9.0."
    gpt = by_model[models[0], "with_skill"]
    assert gpt["reasoning"] is None  # OpenAI shows only how much it reasoned
    gemma = by_model[models[2], "with_skill"]
    assert gemma["passed"] is True and gemma["reported_model"] == "gemma-3-270m-q4_k_m.gguf"

    # CI replays it all: no keys, no model file, no Hugging Face cache, no server.
    replay_env = {
        **hf_env(tmp_path / "empty"),
        "PYTHONPATH": str(ROOT / "src"),
        "PYTEST_ADDOPTS": "",
        "CI": "true",
    }
    replay = run(command, replay_env, tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    replayed = json.loads(report.read_text())["results"]
    assert [r["output"] for r in replayed] == [r["output"] for r in results]
    assert [r["reasoning"] for r in replayed] == [r["reasoning"] for r in results]
    assert all(r["cached"] for r in replayed)
