"""The on-demand arm: tool calling through the real SDKs, the agent loop, confinement,
figures, replay of whole trajectories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import pytest

from pytest_skills.backends import BackendOptions
from pytest_skills.backends.anthropic import AnthropicBackend
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.formats import load_skill
from pytest_skills.models import ErrorKind, ModelSpec, Request, Response, request_for
from pytest_skills.ondemand import MAX_FILE_BYTES, Catalog, StepKind, read_confined, run
from tests.loopback import LoopbackServer
from tests.loopback_tools import ToolModels

RELEASE = """\
---
name: release
description: Release codes of the products Aurora and Borealis.
---
The release code of Aurora is AUR-7. The release code of Borealis is BOR-3.
See references/history.md for older codes.
"""
WEATHER = """\
---
name: weather
description: Weather forecasts for cities and regions.
---
Always give temperatures in Celsius.
"""
CASES = """\
cases:
  - {id: aurora, input: What is the release code of Aurora?, expect: {contains: AUR-7}}
  - {id: borealis, input: What is the release code of Borealis?, expect: {contains: BOR-3}}
"""


def make_skills(root: Path) -> tuple[Path, Path]:
    release, weather = root / "skills" / "release", root / "skills" / "weather"
    (release / "references").mkdir(parents=True)
    weather.mkdir(parents=True)
    (release / "SKILL.md").write_text(RELEASE)
    (release / "references" / "history.md").write_text("Aurora was AUR-6 in 2024.\n")
    (release / "release.skill.yaml").write_text(CASES)
    (weather / "SKILL.md").write_text(WEATHER)
    return release, weather


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    release, weather = make_skills(tmp_path)
    return Catalog.of([load_skill(release / "SKILL.md"), load_skill(weather / "SKILL.md")])


def _backend(api: str, name: str, server: LoopbackServer) -> tuple[object, ModelSpec]:
    if api == "anthropic":
        spec = ModelSpec(name, "anthropic", f"claude-{name}", base_url=server.url)
        return AnthropicBackend(spec, BackendOptions(timeout=10)), spec
    spec = ModelSpec(name, "openai", f"gpt-{name}", base_url=server.openai_url)
    return OpenAIBackend(spec, BackendOptions(timeout=10)), spec


def _loop(
    api: str, name: str, server: LoopbackServer, catalog: Catalog, prompt: str, budget: int = 8
):
    backend, spec = _backend(api, name, server)
    first = request_for(spec, prompt=prompt, system=catalog.system, tools=catalog.tools)
    sent: list[Request] = []

    def ask(request: Request) -> tuple[Response | None, str | None, ErrorKind | None]:
        sent.append(request)
        return backend.complete(request), None, None  # type: ignore[attr-defined]

    return run(first, catalog, ask, budget), sent


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key-123")
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key-456")
    with LoopbackServer(ToolModels()) as loop:
        yield loop


API = pytest.mark.parametrize("api", ["anthropic", "openai"])


@API
def test_activator_loads_the_matching_skill_and_reads_its_file(
    api: str, server: LoopbackServer, catalog: Catalog
) -> None:
    trajectory, sent = _loop(api, "activator", server, catalog, "Release code of Aurora?")
    assert [s.kind for s in trajectory.steps] == [StepKind.ACTIVATE, StepKind.READ, StepKind.ANSWER]
    assert trajectory.activated == ("release",)
    assert trajectory.steps[1].detail == "release/references/history.md"
    answer = trajectory.answer
    assert answer is not None and "AUR-7" in answer.text and "AUR-6" in answer.text
    # The body came without its front matter; the catalog named both skills.
    assert "description:" not in answer.text
    assert "<name>weather</name>" in (server.calls[0].system or "")
    # Each turn sent the conversation so far: a different cache key per turn.
    assert len({r.key for r in sent}) == 3 and [len(r.turns) for r in sent] == [0, 2, 4]
    # On the wire: the tools as each provider documents them, and the tool turns.
    first = server.calls[0].body
    if api == "anthropic":
        assert first["tools"][0]["input_schema"]["properties"]["name"]["enum"] == [
            "release",
            "weather",
        ]
        assert server.calls[1].body["messages"][2]["content"][0]["type"] == "tool_result"
    else:
        assert first["tools"][0]["type"] == "function"
        assert server.calls[1].body["messages"][-1]["role"] == "tool"


@API
def test_never_and_named(api: str, server: LoopbackServer, catalog: Catalog) -> None:
    trajectory, _ = _loop(api, "never", server, catalog, "Release code of Aurora?")
    assert trajectory.activated == () and trajectory.answer is not None
    assert "AUR-7" not in trajectory.answer.text
    unnamed, _ = _loop(api, "named", server, catalog, "Release code of Aurora?")
    assert unnamed.activated == ()
    named, _ = _loop(api, "named", server, catalog, "Use the release skill: code of Aurora?")
    assert named.activated == ("release",)


@API
def test_a_loop_ends_at_the_budget(api: str, server: LoopbackServer, catalog: Catalog) -> None:
    trajectory, sent = _loop(api, "looper", server, catalog, "anything", budget=3)
    assert len(sent) == 3 and trajectory.answer is None
    assert trajectory.error == "no final answer within 3 model turns (the turn budget)"
    assert trajectory.steps[-1].kind is StepKind.BUDGET


@API
def test_malformed_calls_are_steps_with_reasons(
    api: str, server: LoopbackServer, catalog: Catalog
) -> None:
    trajectory, _ = _loop(api, "malformed", server, catalog, "anything")
    lines = trajectory.lines()
    assert lines[0] == (
        "turn 1: run_script refused: unknown tool 'run_script': use activate_skill or "
        "read_skill_file"
    )
    if api == "openai":
        assert lines[1].startswith("turn 2: activate_skill refused: malformed arguments (not JSON)")
    else:
        assert lines[1] == (
            "turn 2: activate_skill refused: 'name' must be one of release, weather, not None"
        )
    assert "is outside the skill" in lines[2]
    assert lines[3] == "turn 4: empty answer: the final answer is empty"
    assert trajectory.activated == ()
    assert trajectory.to_json()["tool_errors"][2].startswith("'../../../etc/passwd'")


def test_reads_are_confined_to_the_skill(tmp_path: Path) -> None:
    skill = tmp_path / "skill"
    (skill / "refs").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("outside")
    (skill / "refs" / "ok.md").write_text("inside")
    os.symlink(tmp_path / "secret.txt", skill / "refs" / "link.md")
    (skill / "big.txt").write_text("x" * (MAX_FILE_BYTES + 10))
    (skill / "blob.bin").write_bytes(b"\0\1\2")
    assert read_confined(skill, "refs/ok.md") == "inside"
    assert "outside the skill" in read_confined(skill, "../secret.txt")
    assert "outside the skill" in read_confined(skill, str(tmp_path / "secret.txt"))
    assert "leads outside the skill (a symlink)" in read_confined(skill, "refs/link.md")
    assert "no file" in read_confined(skill, "refs/none.md")
    assert "not a text file" in read_confined(skill, "blob.bin")
    big = read_confined(skill, "big.txt")
    assert big.endswith(f"[cut: the file is longer than {MAX_FILE_BYTES} bytes]")
    assert big.count("x") == MAX_FILE_BYTES


def test_tool_calls_survive_the_cache_round_trip() -> None:
    from pytest_skills.models import ToolCall

    response = Response("", tool_calls=(ToolCall("c1", "activate_skill", '{"name": "x"}'),))
    again = Response.from_json(json.loads(json.dumps(response.to_json())), cached=True)
    assert again.tool_calls == response.tool_calls
    assert "tool_calls" not in Response("plain").to_json()
    with pytest.raises(ValueError, match="tool call"):
        Response.from_json({"text": "", "tool_calls": [{"id": 1}]}, cached=True)


# --- the arm in a run ------------------------------------------------------------------------


def _session(pytester: pytest.Pytester, tmp_path: Path, model: str, *args: str):
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--skill-model",
        model,
        "--skill-arms",
        "skill,baseline,on-demand",
        f"--skill-cache-dir={tmp_path / 'cache'}",
        f"--skill-report={tmp_path / 'report.json'}",
        *args,
    )


@pytest.mark.parametrize("model", ["anthropic:claude-activator", "openai:gpt-activator"])
def test_three_arms_figures_and_offline_replay(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path, model: str
) -> None:
    provider_env.responder = ToolModels()
    make_skills(pytester.path)
    first = _session(pytester, tmp_path, model)
    first.assert_outcomes(passed=2)
    # skill + baseline: 2 calls per case; on-demand: activate, read, answer.
    assert len(provider_env.calls) == 2 * 2 + 2 * 3
    first.stdout.fnmatch_lines(
        [
            "*skill vs on-demand: 2/2 against 2/2, +0pp*",
            "*on-demand vs baseline: 2/2 against 0/2, +100pp*",
            "*on-demand: the skill was loaded in 2/2 answers (100%)*",
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    (figures,) = report["models"]
    assert figures["arms"]["on-demand"]["passed"] == 2
    assert figures["trigger"]["rate"]["loaded"] == 2
    pairs = {(c["a"], c["b"]): c["lift"] for c in figures["comparisons"]}
    assert pairs == {
        ("skill", "baseline"): 1.0,
        ("skill", "on-demand"): 0.0,
        ("on-demand", "baseline"): 1.0,
    }
    on_demand = [r for r in report["results"] if r["arm"] == "on-demand"]
    assert {tuple(r["activated"]) for r in on_demand} == {("release",)}
    steps = on_demand[0]["trajectory"]["steps"]
    assert [s["kind"] for s in steps] == ["activate", "read", "answer"]

    # The whole trajectory replays offline: not one request reaches the server.
    before = len(provider_env.calls)
    again = _session(pytester, tmp_path, model, "--skill-cache=replay")
    again.assert_outcomes(passed=2)
    assert len(provider_env.calls) == before
    replayed = json.loads((tmp_path / "report.json").read_text())
    assert replayed["models"][0]["trigger"] == figures["trigger"]
    assert replayed["models"][0]["comparisons"] == figures["comparisons"]


def test_a_model_that_never_loads_the_skill(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    """The forced arm says the skill helps; on demand it is never loaded and helps nothing."""
    provider_env.responder = ToolModels()
    make_skills(pytester.path)
    forced = _session(pytester, tmp_path, "anthropic:claude-never")
    forced.assert_outcomes(passed=2)  # the skill arm decides, and it is forced
    forced.stdout.fnmatch_lines(
        [
            "*skill vs on-demand: 2/2 against 0/2, +100pp*",
            "*on-demand vs baseline: 0/2 against 0/2, +0pp*",
            "*on-demand: the skill was loaded in 0/2 answers (0%)*",
        ]
    )
    figures = json.loads((tmp_path / "report.json").read_text())["models"][0]
    pairs = {(c["a"], c["b"]): c["lift"] for c in figures["comparisons"]}
    # Forced lift, on-demand lift, and the lift lost to not triggering.
    assert pairs == {
        ("skill", "baseline"): 1.0,
        ("on-demand", "baseline"): 0.0,
        ("skill", "on-demand"): 1.0,
    }
    # Alone, the on-demand arm decides; the steps are in the failure text.
    alone = _session(pytester, tmp_path, "anthropic:claude-never", "--skill-arms", "on-demand")
    alone.assert_outcomes(failed=2)
    alone.stdout.fnmatch_lines(["*on-demand steps (trial 0)*", "*turn 1: answered*"])


def test_a_loop_past_the_budget_fails_the_item_with_its_steps(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    provider_env.responder = ToolModels()
    make_skills(pytester.path)
    result = _session(
        pytester,
        tmp_path,
        "openai:gpt-looper",
        "--skill-arms",
        "on-demand",
        "--skill-turns",
        "3",
        "-k",
        "aurora",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no final answer within 3 model turns (the turn budget)*",
            "*turn 1: activated skill release*",
        ]
    )
    assert len(provider_env.calls) == 3


def test_xdist_gives_the_same_arm_figures(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    provider_env.responder = ToolModels()
    make_skills(pytester.path)
    html = tmp_path / "report.html"
    model = "anthropic:claude-activator"
    serial = _session(pytester, tmp_path, model, "--skill-cache=off", f"--skill-html={html}")
    serial.assert_outcomes(passed=2)
    first = json.loads((tmp_path / "report.json").read_text())["models"][0]
    page = html.read_text()
    assert "on-demand" in page
    # Each case shows the on-demand arm's answer with the steps of its agent loop.
    assert page.count("<h5>on-demand arm ") == 2
    assert '<ol class="steps"><li>turn 1: activate: ' in page
    parallel = _session(pytester, tmp_path, model, "--skill-cache=off", "-n", "2")
    parallel.assert_outcomes(passed=2)
    second = json.loads((tmp_path / "report.json").read_text())["models"][0]
    assert second["trigger"] == first["trigger"]
    assert second["comparisons"] == first["comparisons"]
    assert second["arms"] == first["arms"]


def test_the_arm_parses_and_the_catalog_narrows(tmp_path: Path) -> None:
    from pytest_skills.arms import ON_DEMAND, SKILL, parse_arms
    from pytest_skills.ondemand import Catalogs

    assert parse_arms("skill,on-demand") == (SKILL, ON_DEMAND)
    release, weather = make_skills(tmp_path)
    (tmp_path / ".venv" / "hidden").mkdir(parents=True)
    (tmp_path / ".venv" / "hidden" / "SKILL.md").write_text(WEATHER.replace("weather", "hidden"))
    everything = Catalogs(tmp_path).for_skills([])
    assert everything.names == ("release", "weather")
    narrowed = Catalogs(tmp_path, ("weather",)).for_skills([load_skill(release / "SKILL.md")])
    assert narrowed.names == ("release", "weather")
    only = Catalogs(tmp_path, ("nothing",)).for_skills([load_skill(weather / "SKILL.md")])
    assert only.names == ("weather",) and "<name>release</name>" not in only.system
