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


URL_SECRET = "pw-0123456789abcdef"
QUERY_SECRET = "qk-fedcba9876543210"


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(("user:" + URL_SECRET + "@", ""), id="userinfo"),
        pytest.param(("", "?api-key=" + QUERY_SECRET), id="query"),
        pytest.param(("user:" + URL_SECRET + "@", "?api-key=" + QUERY_SECRET), id="both"),
    ],
)
def test_base_url_credentials_reach_no_output(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    credentials: tuple[str, str],
) -> None:
    userinfo, query = credentials
    summary, html, workspace = tmp_path / "summary.md", tmp_path / "r.html", tmp_path / "ws"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    closed = LoopbackServer()
    closed.stop()  # nothing listens there any more
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://{userinfo}127.0.0.1:{closed.port}/v1{query}")
    write_skill(pytester.path)
    terminal, junit, report = outputs(
        pytester,
        tmp_path,
        "--skill-model",
        "openai:gpt-x",
        "--skill-cache=off",
        "--skill-retries=0",
        f"--skill-html={html}",
        f"--skill-workspace={workspace}",
    )
    assert "2 failed" in terminal
    written = [p.read_text(errors="replace") for p in workspace.rglob("*") if p.is_file()]
    for text in (terminal, junit, report, summary.read_text(), html.read_text(), *written):
        assert URL_SECRET not in text and QUERY_SECRET not in text
    assert f"cannot reach http://127.0.0.1:{closed.port}/v1" in report


def test_values_of_password_auth_and_cookie_variables_are_redacted(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = {
        "DB_PASSWORD": "hunter2-but-longer",
        "PGPASS": "pg-pass-0987654321",
        "MY_CREDENTIALS": "cred-1122334455",
        "PROXY_AUTH": "auth-5566778899",
        "SESSION_COOKIE": "cookie-9988776655",
        "SHORT_PASSWORD": "hunter2",  # under 8 characters: would match everywhere
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Jane Developer")  # AUTHOR is not AUTH
    provider_env.responder = lambda call: "leaked: " + " ".join(values.values()) + " Jane Developer"
    cases = "cases:\n  - {id: a, input: a, expect: {equals: nothing}}\n"
    write_skill(pytester.path, cases_yaml=cases)
    terminal, junit, report = outputs(
        pytester, tmp_path, "--skill-model", HAIKU, "--skill-cache=off", "--no-skill-baseline"
    )
    assert "1 failed" in terminal
    for text in (terminal, junit, report):
        for name, value in values.items():
            if name != "SHORT_PASSWORD":
                assert value not in text
                assert f"[redacted ${name}]" in text
        assert "hunter2" in text and "Jane Developer" in text
