"""The plugin end to end: pytester runs against the loopback provider, through the real SDKs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from pytest_skills.models import ALIASES_CHECKED, DEFAULT_ALIASES
from tests.conftest import HAIKU, output, write_skill
from tests.loopback import LoopbackServer

SKILL_BLOCK = "# Skill: demo\n\nWhen asked anything, mention the word demo.\n"
#: The node id suffix `[anthropic:claude-haiku-4-5]`, escaped for fnmatch patterns.
ID = f"[[]{HAIKU}[]]"
#: The loopback names the skill in its answer only when it was given one, so
#: `mentions-skill` passes with the skill and fails without; `echoes` passes both.
ROW = r"anthropic:claude-haiku-4-5\s+2\s+2/2\s+100%\s+1/2\s+50%\s+\+50pp\s+"

pytestmark = pytest.mark.usefixtures("provider_env")


def run(pytester: pytest.Pytester, *args: str, model: str | None = HAIKU) -> pytest.RunResult:
    model_args = ("--skill-model", model) if model else ()
    return pytester.runpytest(*model_args, "-p", "no:cacheprovider", "--skill-cache=off", *args)


def read_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# --- items, ids, skipping -----------------------------------------------------------------


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


# --- conditions, verdict, calls -------------------------------------------------------------


def test_with_skill_and_baseline_are_both_called(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    write_skill(pytester.path)
    result = run(pytester)
    result.assert_outcomes(passed=2)
    calls = loopback.calls
    assert len(calls) == 4  # 2 cases x (with skill, baseline)
    assert sorted((c.prompt, c.system or "") for c in calls) == [
        ("Repeat after me", ""),
        ("Repeat after me", SKILL_BLOCK),
        ("Tell me about the topic", ""),
        ("Tell me about the topic", SKILL_BLOCK),
    ]
    assert {(c.api, c.model) for c in calls} == {("anthropic", "claude-haiku-4-5")}


def test_baseline_failures_never_fail_a_test(pytester: pytest.Pytester) -> None:
    # `mentions-skill` fails at baseline (no skill, no mention) and still passes.
    write_skill(pytester.path)
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines_random(
        [
            f"demo/demo.skill.yaml::mentions-skill{ID} PASSED*",
            f"demo/demo.skill.yaml::echoes{ID} PASSED*",
        ]
    )
    result.stdout.re_match_lines([ROW])


def test_verdict_comes_from_the_with_skill_answer(pytester: pytest.Pytester) -> None:
    # Passes without the skill, fails with it: the item fails.
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - id: no-skill-please
            input: Anything
            expect:
              not_contains: "skill:"
    """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [r"anthropic:claude-haiku-4-5\s+1\s+0/1\s+0%\s+1/1\s+100%\s+-100pp"]
    )


def test_summary_table(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester)
    result.stdout.fnmatch_lines(
        [
            "=* skills =*",
            "pass rate with and without the skill",
            "model * cases  with skill * baseline * lift  95% CI * p  verdict",
        ]
    )
    result.stdout.re_match_lines([ROW + r"\[[-+]\d+,[-+]\d+\]\s+1\.000\s+inconclusive$"])
    # Tokens per call, named as such: with the skill, without it, and the change.
    result.stdout.re_match_lines(
        [r"  \S+: tokens per call: \d+ with the skill, \d+ without \(\+\d+%\)"]
    )
    # Two items and four calls, none cached: the progress line says so (not a tty: once).
    result.stdout.fnmatch_lines(["skills: 4 calls: 4 live, 0 from the cache, 0 failed (*s)"])


def test_no_baseline(pytester: pytest.Pytester, loopback: LoopbackServer, tmp_path: Path) -> None:
    write_skill(pytester.path)
    report = tmp_path / "report.json"
    result = run(pytester, "--no-skill-baseline", "--skill-report", str(report))
    result.assert_outcomes(passed=2)
    assert len(loopback.calls) == 2
    assert all(call.system == SKILL_BLOCK for call in loopback.calls)
    result.stdout.re_match_lines([r"anthropic:claude-haiku-4-5\s+2\s+2/2\s+100%\s+skipped\s+-"])
    assert "no baseline" in result.stdout.str()  # the header says so
    (model,) = read_report(report)["models"]
    assert model["baseline"] is None
    assert model["lift"] is None and model["lift_ci"] is None and model["p_value"] is None
    assert {r["condition"] for r in read_report(report)["results"]} == {"with_skill"}


# --- markers ------------------------------------------------------------------------------


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


# --- failures -----------------------------------------------------------------------------


def test_failure_shows_check_expected_actual_and_answer(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    loopback.responder = lambda call: (
        "Use sm_80.\nThen build with\n  make all" if call.system else "No idea, sorry."
    )
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - id: h100
            input: Build for H100
            expect:
              contains: ["9.0", "make"]
              not_contains: sm_80
    """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*{HAIKU}: with the skill, 0 of 1 trial(s) passed (needed 1)",
            "  contains failed",
            "    expected: contains '9.0', 'make'",
            "    actual:   missing '9.0'",
            "  not_contains failed",
            "    expected: contains none of 'sm_80'",
            "    actual:   found 'sm_80'",
            "*- answer with the skill -*",
            "Use sm_80.",
            "Then build with",
            "  make all",
            # The baseline's answer to the same question, beside it, with its verdict.
            "*- baseline answer (no skill) (failed) -*",
            "No idea, sorry.",
            "",
            "case h100 defined at *demo.skill.yaml:2",
        ]
    )
    text = result.stdout.str()
    assert "Traceback" not in text
    assert text.count("Then build with") == 1  # the answer is shown once, in full
    assert text.count("No idea, sorry.") == 1
    result.stdout.fnmatch_lines([f"FAILED demo/demo.skill.yaml::h100{ID}*"])


def test_missing_api_key_fails_with_the_variable_name(
    pytester: pytest.Pytester, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    write_skill(pytester.path)
    report = pytester.path / "report.json"
    result = run(pytester, f"--skill-report={report}")
    result.assert_outcomes(failed=2)
    # The progress line, the problems and the JSON report count the same 4 calls.
    result.stdout.fnmatch_lines(["skills: 4 calls: 0 live, 0 from the cache, 4 failed (*)"])
    (model,) = read_report(report)["models"]
    assert model["errors"] == 4
    assert {r["error_kind"] for r in read_report(report)["results"]} == {"model"}
    # Each item fails with one short line; the fix is said once, in the summary.
    short = f"{HAIKU}: Anthropic needs an API key: ANTHROPIC_API_KEY is not set (the skills *"
    result.stdout.fnmatch_lines([short, short])
    result.stdout.fnmatch_lines(
        [
            "problems (each said once*",
            f"  {HAIKU}: 4 call(s) not made: Anthropic needs an API key: ANTHROPIC_API_KEY is*",
            "    Set the environment variable ANTHROPIC_API_KEY, or replay recorded answers with*",
        ]
    )
    assert result.stdout.str().count("Set the environment variable") == 1
    text = output(result)
    assert "Traceback" not in text
    assert "MissingCredentials" not in text and "BackendError" not in text
    assert loopback.calls == []


def test_missing_key_does_not_change_collection(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    write_skill(pytester.path)
    result = run(pytester, "--collect-only", "-q")
    assert "2 tests collected" in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK


def test_provider_error_fails_the_item_readably(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    loopback.fail_next(400, times=10, message="prompt is too long")
    write_skill(pytester.path)
    result = run(pytester, "--skill-retries", "0", "--no-skill-baseline")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"{HAIKU}: Anthropic 400: prompt is too long"])
    assert "Traceback" not in output(result)


# --- model specs ----------------------------------------------------------------------------


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


# --- JSON report ------------------------------------------------------------------------------


def test_json_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    write_skill(pytester.path)
    report_path = tmp_path / "out" / "skills.json"
    result = run(pytester, "--skill-report", str(report_path), model="haiku")
    result.assert_outcomes(passed=2)
    report = read_report(report_path)

    assert report["version"] == 1
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


# --- extension hooks -------------------------------------------------------------------------

CONFTEST_HOOKS = """
    from pytest_skills.checks import CheckResult
    from pytest_skills.models import Response, Usage


    def _max_words(limit, answer):
        words = len(answer.split())
        return CheckResult("max_words", words <= limit, f"at most {limit} words",
                           f"{words} words")


    def pytest_skills_register_checks(registry):
        registry.register("max_words", _max_words, validate=int)


    class ShoutBackend:
        exclusive = False

        def complete(self, request):
            skill = "SKILLED " if request.system else ""
            return Response(text=skill + request.prompt.upper(), usage=Usage(output_tokens=1))


    def pytest_skills_make_backend(spec, config):
        if spec.provider == "shout":
            return ShoutBackend()
        return None
"""


def test_custom_check_and_backend_from_conftest(
    pytester: pytest.Pytester, loopback: LoopbackServer
) -> None:
    pytester.makeconftest(textwrap.dedent(CONFTEST_HOOKS))
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - id: short-and-loud
            input: be brief
            expect:
              max_words: "3"
              contains: SKILLED BE BRIEF
          - id: too-long
            input: one two three four
            expect: {max_words: 3}
    """,
    )
    result = run(pytester, "-v", model="shout:anything")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "demo/demo.skill.yaml::short-and-loud[[]shout:anything[]] PASSED*",
            "demo/demo.skill.yaml::too-long[[]shout:anything[]] FAILED*",
            "  max_words failed",
            "    expected: at most 3 words",
            "    actual:   5 words",
        ]
    )
    result.stdout.re_match_lines([r"^shout:anything\s+2\s+1/2\s+50%\s+0/2\s+0%\s+\+50pp"])
    assert loopback.calls == []


def test_custom_check_validation_error_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(textwrap.dedent(CONFTEST_HOOKS))
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - input: be brief
            expect: {max_words: many}
    """,
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*demo.skill.yaml:3: max_words: invalid literal for int()*"])


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


# --- verbosity ------------------------------------------------------------------------------


def test_quiet_keeps_the_table(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester, "-q")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([ROW])
    assert "skills: models:" not in result.stdout.str()  # -q drops the header


def test_very_quiet_drops_the_table_and_progress(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester, "-qq")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([".. * [[]100%[]]"])
    text = result.stdout.str()
    assert "skills:" not in text
    assert "+50pp" not in text


def test_verbose_adds_intervals(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path)
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines(
        [
            "columns:",
            "  cases: cases graded in both conditions*",
            "Wilson 95% intervals of the pass rates; mean latency per call (one sample per call:",
            "it varies from run to run and is not a property of the skill)",
            f"  {HAIKU}: with skill [[]*-100[]], baseline [[]*-*[]]*",
        ]
    )


# --- xdist -----------------------------------------------------------------------------------

#: Six cases: two need the skill, two pass anyway, two fail either way.
XDIST_CASES = "cases:\n" + "".join(
    f"  - id: case-{i}\n    input: Question number {i}\n"
    f"    expect: {{contains: '{('skill: demo', 'number', 'absent')[i % 3]}'}}\n"
    for i in range(6)
)


def _comparable(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Latency is measured, and which call writes the loopback's prompt cache (priced
    # differently from reads) depends on arrival order: both legitimately vary.
    # The prompt-cache split of the tokens varies the same way; their total does not.
    comparable = []
    for model in models:
        kept = {k: v for k, v in model.items() if k not in ("latency_s", "cost_usd")}
        kept["tokens"] = {
            k: v for k, v in model["tokens"].items() if k not in ("cache_read", "cache_write")
        }
        comparable.append(kept)
    return comparable


def _results(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (r["nodeid"], r["condition"], r["trial"], r["passed"], r["output"])
        for r in report["results"]
    )


def test_xdist_gives_the_same_outcomes_and_report(
    pytester: pytest.Pytester, loopback: LoopbackServer, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    write_skill(pytester.path, cases_yaml=XDIST_CASES)
    serial, parallel = tmp_path / "n0.json", tmp_path / "n2.json"

    result0 = run(pytester, "-n", "0", "--skill-report", str(serial))
    result0.assert_outcomes(passed=4, failed=2)
    assert len(loopback.calls) == 12
    result2 = pytester.runpytest_subprocess(
        "--skill-model",
        HAIKU,
        "-p",
        "no:cacheprovider",
        "--skill-cache=off",
        "-n",
        "2",
        "--skill-report",
        str(parallel),
    )
    result2.assert_outcomes(passed=4, failed=2)
    assert "2 workers" in result2.stdout.str()
    assert len(loopback.calls) == 24  # the workers made the same calls, each once

    one, two = read_report(serial), read_report(parallel)
    assert one["models"][0]["cases"] == 6
    assert one["models"][0]["with_skill"]["passed"] == 4
    assert one["models"][0]["baseline"]["passed"] == 2
    assert _comparable(one["models"]) == _comparable(two["models"])
    assert _results(one) == _results(two)
    for result in (result0, result2):
        # The controller prints the failures and the same summary row.
        result.stdout.fnmatch_lines(
            [
                "*contains failed",
                "    expected: contains 'absent'",
                "    actual:   missing 'absent'",
            ]
        )
        result.stdout.re_match_lines(
            [
                r"anthropic:claude-haiku-4-5\s+6\s+4/6\s+67%\s+2/6\s+33%\s+\+33pp",
            ]
        )


def test_a_conftest_beside_the_skill_files_adds_check_kinds(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    # Not an initial conftest: pytest loads it during collection, after configure.
    directory = write_skill(
        pytester.path / "deep" / "skills",
        cases_yaml="""
            cases:
              - {id: short, input: hi, expect: {max_words: 50}}
              - {id: long, input: hi, expect: {max_words: 2}}
        """,
    )
    (directory / "conftest.py").write_text(
        "from pytest_skills.checks import CheckResult\n\n"
        "def pytest_skills_register_checks(registry):\n"
        "    def max_words(limit, answer):\n"
        "        words = len(answer.split())\n"
        "        return CheckResult('max_words', words <= limit, f'at most {limit} words',\n"
        "                           f'{words} words')\n"
        "    registry.register('max_words', max_words, validate=int)\n"
    )
    result = pytester.runpytest(
        "--skill-model", "anthropic:claude-haiku-4-5", "--skill-cache=off", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*max_words failed*", "*expected: at most 2 words*"])
