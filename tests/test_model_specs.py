"""Naming models: specs with a base URL, ini models and aliases, usage errors at start-up,
the alias list and --help."""

from __future__ import annotations

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from pytest_skills.models import ALIASES_CHECKED, DEFAULT_ALIASES
from tests.conftest import output, write_skill
from tests.loopback import LoopbackServer
from tests.plugin_runs import SKILL_BLOCK, run

pytestmark = pytest.mark.usefixtures("provider_env")


def test_openai_spec_with_base_url(
    pytester: pytest.Pytester, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")  # so only the spec's @base_url can reach the loopback
    write_skill(pytester.path)
    spec = f"openai:qwen3@{loopback.openai_url}"
    result = run(pytester, "-v", model=spec)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random(
        [
            f"demo/demo.skill.yaml::echoes[[]{spec}[]] PASSED*",
            f"demo/demo.skill.yaml::mentions-skill[[]{spec}[]] PASSED*",
        ]
    )
    assert len(loopback.calls) == 4
    assert {(c.api, c.model) for c in loopback.calls} == {("openai", "qwen3")}
    assert sorted(c.system or "" for c in loopback.calls) == ["", "", SKILL_BLOCK, SKILL_BLOCK]


def test_ini_models_and_aliases(pytester: pytest.Pytester, loopback: LoopbackServer) -> None:
    pytester.makeini(f"""
        [pytest]
        skill_models =
            fast
            haiku
        skill_model_aliases =
            # a comment line
            fast = openai:small-model@{loopback.openai_url}
            haiku = anthropic:claude-haiku-override
    """)
    write_skill(pytester.path)
    result = run(pytester, "-v", model=None)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            f"skills: models: fast (openai:small-model@{loopback.openai_url}), "
            "haiku (anthropic:claude-haiku-override)",
        ]
    )
    result.stdout.fnmatch_lines_random(
        [
            "demo/demo.skill.yaml::echoes[[]fast[]] PASSED*",
            "demo/demo.skill.yaml::echoes[[]haiku[]] PASSED*",
        ]
    )
    # The name typed is the name shown; the alias decides what is called.
    assert sorted({(c.api, c.model) for c in loopback.calls}) == [
        ("anthropic", "claude-haiku-override"),
        ("openai", "small-model"),
    ]
    result.stdout.re_match_lines([r"^fast\s+2\s+2/2", r"^haiku\s+2\s+2/2"])


def test_cli_model_overrides_ini_models(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    pytester.makeini("[pytest]\nskill_models = sonnet\n")
    write_skill(pytester.path)
    result = run(pytester, "--collect-only", "-q", model="haiku")
    result.stdout.fnmatch_lines(["demo/demo.skill.yaml::mentions-skill[[]haiku[]]"])
    assert "sonnet" not in result.stdout.str()
    assert "2 tests collected" in result.stdout.str()


def test_unknown_provider_is_one_usage_error_at_start_up(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester, model="antropic:model")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-skills: no backend for provider 'antropic' in 'antropic:model' "
            "(did you mean anthropic?)*pytest_skills_make_backend hook"
        ]
    )
    assert output(result).count("no backend for provider") == 1
    assert "Traceback" not in output(result)


def test_unknown_alias_says_did_you_mean(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester, model="gemma-270m")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown model 'gemma-270m' (did you mean gemma3-270m?)*"])


def test_models_list_shows_every_alias_and_exits(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nskill_model_aliases =\n    mine = openai:my-model@http://127.0.0.1:1/v1\n"
    )
    write_skill(pytester.path)
    result = pytester.runpytest("--skill-models-list")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"model aliases, built-in ones checked {ALIASES_CHECKED}*",
            "  gemma3-270m * gguf:gemma-3-270m-q4_k_m.gguf",
            "  glm-4.7-flash * hf:unsloth/GLM-4.7-Flash-GGUF:Q4_0",
            f"  haiku * {DEFAULT_ALIASES['haiku']}",
            "  mine * openai:my-model@http://127.0.0.1:1/v1  (ini skill_model_aliases)",
        ]
    )
    assert "collected" not in result.stdout.str()  # nothing ran


def test_help_names_the_environment_variables(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest("--help").stdout.str()
    for variable in ("CI", "PYTEST_SKILLS_GGUF_DIR", "GITHUB_STEP_SUMMARY", "ANTHROPIC_API_KEY"):
        assert variable in text, variable
    assert "--skill-models-list" in text
