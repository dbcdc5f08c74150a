"""No secret leaves the process: failure output, JUnit XML, the JSON report, the step
summary and providers' error messages all carry ``[redacted $NAME]`` instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import HAIKU, write_skill
from tests.conftest import output as everything
from tests.loopback import LoopbackServer

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def secret_env(provider_env: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    monkeypatch.setenv("MY_SERVICE_TOKEN", SECRET)
    return provider_env


def outputs(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> tuple[str, str, str]:
    """Terminal, JUnit XML and JSON report of one run."""
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--junitxml={junit}", f"--skill-report={report}", *args
    )
    return everything(result), junit.read_text(), report.read_text()


def test_failing_checks_never_show_a_secret(
    pytester: pytest.Pytester, secret_env: LoopbackServer, tmp_path: Path
) -> None:
    secret_env.responder = lambda call: f"The answer is {SECRET}"
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - {id: equals, input: a, expect: {equals: The answer is 42}}
          - {id: regex, input: b, expect: {regex: 'answer is sk-live-0123456789abcdef!'}}
          - {id: starts, input: c, expect: {starts_with: "42"}}
    """,
    )
    terminal, junit, report = outputs(
        pytester, tmp_path, "--skill-model", HAIKU, "--skill-cache=off", "-rA"
    )
    assert "3 failed" in terminal
    for text in (terminal, junit, report):
        assert SECRET not in text
        assert "[redacted $MY_SERVICE_TOKEN]" in text
    assert "actual:   'The answer is [redacted $MY_SERVICE_TOKEN]'" in terminal


def test_a_provider_error_that_echoes_the_key_is_redacted(
    pytester: pytest.Pytester, secret_env: LoopbackServer, tmp_path: Path
) -> None:
    key = "test-anthropic-key-123"  # what provider_env sets as ANTHROPIC_API_KEY
    secret_env.fail_next(401, times=4, message=f"invalid x-api-key: {key}")
    write_skill(pytester.path)
    terminal, junit, report = outputs(
        pytester, tmp_path, "--skill-model", HAIKU, "--skill-cache=off"
    )
    assert "2 failed" in terminal
    for text in (terminal, junit, report):
        assert key not in text
        assert "invalid x-api-key: [redacted $ANTHROPIC_API_KEY]" in text


def test_fixture_tests_never_show_a_secret(
    pytester: pytest.Pytester, secret_env: LoopbackServer, tmp_path: Path
) -> None:
    secret_env.responder = lambda call: f"token={SECRET}"
    directory = write_skill(pytester.path)
    (directory / "test_asks.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.skill('.')\n"
        "def test_require(skill_model):\n"
        "    skill_model.ask('q1').require({'equals': 'nothing'})\n\n"
        "@pytest.mark.skill('.')\n"
        "def test_assert(skill_model):\n"
        "    answer = skill_model.ask('q2')\n"
        "    assert answer.text == 'nothing', answer.text\n"
    )
    terminal, junit, report = outputs(
        pytester, tmp_path, "--skill-model", HAIKU, "--skill-cache=off", "-k", "test_"
    )
    assert "2 failed" in terminal
    for text in (terminal, junit, report):
        assert SECRET not in text
    assert "[redacted $MY_SERVICE_TOKEN]" in terminal


def test_a_connection_error_naming_a_secret_url_is_redacted(
    pytester: pytest.Pytester,
    secret_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    closed = LoopbackServer()
    closed.stop()  # nothing listens there any more
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:{SECRET}@127.0.0.1:{closed.port}/v1")
    write_skill(pytester.path)
    terminal, junit, report = outputs(
        pytester,
        tmp_path,
        "--skill-model",
        "openai:gpt-x",
        "--skill-cache=off",
        "--skill-retries=0",
    )
    assert "2 failed" in terminal
    for text in (terminal, junit, report, summary.read_text()):
        assert SECRET not in text
    # The URL is shown without its credentials, in the error and everywhere it goes.
    assert f"cannot reach http://127.0.0.1:{closed.port}/v1/chat/completions: " in report
    assert "user:" not in terminal + junit + report
