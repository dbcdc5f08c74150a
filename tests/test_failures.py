"""What a failing item shows: the check, expected against actual, the answer; a missing
key; a provider error."""

from __future__ import annotations

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import HAIKU, output, write_skill
from tests.loopback import LoopbackServer
from tests.plugin_runs import ID, read_report, run

pytestmark = pytest.mark.usefixtures("provider_env")


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
    assert "MissingCredentialsError" not in text and "BackendError" not in text
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
