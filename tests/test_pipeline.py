"""One path through a run: calls made just ahead of the items (so -x stops spending),
the check kinds of a directory for files and fixture tests alike, one set of figures."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import openai  # noqa: F401
import pytest

from pytest_skills.report.names import short_names
from tests.conftest import HAIKU, write_skill
from tests.loopback import Call, LoopbackServer, echo

CONCURRENCY = 4
#: Twenty cases no answer passes: 40 calls with the baseline.
FAILING = "cases:\n" + "".join(
    f"  - {{id: c{i:02d}, input: question {i}, expect: {{contains: never said}}}}\n"
    for i in range(20)
)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--skill-model",
        HAIKU,
        "--skill-cache=off",
        f"--skill-concurrency={CONCURRENCY}",
        *args,
    )


# --- spending follows pytest's control ---------------------------------------------------


def test_exitfirst_stops_spending_after_the_first_failure(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(pytester.path, cases_yaml=FAILING)
    result = _run(pytester, "-x")
    result.assert_outcomes(failed=1)
    # The window keeps twice the concurrency in flight beyond the item that runs: the
    # first item's two calls and at most that many more, never the whole suite's 40.
    made = len(provider_env.calls)
    assert 2 <= made <= 2 + 2 * CONCURRENCY, made


def test_maxfail_stops_spending_after_the_second_failure(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(pytester.path, cases_yaml=FAILING)
    result = _run(pytester, "--maxfail=2")
    result.assert_outcomes(failed=2)
    made = len(provider_env.calls)
    assert 4 <= made <= 4 + 2 * CONCURRENCY, made


def test_a_whole_run_makes_every_call_once(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(pytester.path, cases_yaml=FAILING)
    _run(pytester).assert_outcomes(failed=20)
    assert len(provider_env.calls) == 40
    assert len({(c.system, c.prompt) for c in provider_env.calls}) == 40


# --- one registry per directory ------------------------------------------------------------

CONFTEST_KIND = """
    from pytest_skills.checks import CheckResult

    def _shouts(value, answer):
        return CheckResult("shouts", answer.isupper() == value, f"shouting: {value}",
                           f"shouting: {answer.isupper()}")

    def pytest_skills_register_checks(registry):
        registry.register("shouts", _shouts, validate=bool)
"""


def test_a_conftest_check_kind_works_in_skill_files_and_fixture_tests_beside_it(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    sub = write_skill(
        pytester.path / "sub",
        cases_yaml="""
            cases:
              - {id: quiet, input: say it, expect: {shouts: false}}
        """,
    )
    (sub / "conftest.py").write_text(textwrap.dedent(CONFTEST_KIND))
    (sub / "test_app.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.skill("SKILL.md")
            def test_quiet(skill_model):
                skill_model.ask("say it").require({"shouts": False})
            """
        )
    )
    result = _run(pytester, ".")
    result.assert_outcomes(passed=2)
    assert "unknown check kind" not in result.stdout.str()


# --- one set of figures ----------------------------------------------------------------------


def test_every_output_shows_the_same_counts_and_verdicts(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Five cases the skill fixes, one it cannot, and one whose baseline call fails:
    # that case is left out of the paired figures everywhere, not only in some outputs.
    cases = [
        f"{{id: fixed-{i}, input: question {i}, expect: {{contains: 'skill: demo'}}}}"
        for i in range(5)
    ]
    cases += [
        "{id: unfixable, input: other question, expect: {contains: never said}}",
        "{id: lonely, input: lonely question, expect: {contains: echo}}",
    ]
    write_skill(pytester.path, cases_yaml="cases:\n" + "".join(f"  - {c}\n" for c in cases))

    def respond(call: Call) -> str:
        if "lonely" in call.prompt and not call.system:
            raise RuntimeError("this baseline call fails")
        return echo(call)

    provider_env.responder = respond
    summary_file = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    result = _run(
        pytester,
        "--skill-retries=0",
        f"--skill-report={tmp_path / 'report.json'}",
        f"--skill-html={tmp_path / 'report.html'}",
    )
    model = json.loads((tmp_path / "report.json").read_text())["models"][0]
    cases, verdict = model["cases"], model["verdict"]
    ws, bs = model["with_skill"], model["baseline"]
    assert (cases, ws["passed"], ws["total"], bs["passed"]) == (6, 5, 6, 0)
    assert model["cases_total"] == 7
    row = next(line for line in result.outlines if re.match(rf"{HAIKU}\s+\d", line))
    assert re.search(rf"\b{cases}\s+{ws['passed']}/{ws['total']}\s.*{verdict}$", row), row
    markdown = summary_file.read_text()
    assert f"| {cases} | {ws['passed']}/{ws['total']} " in markdown and f"| {verdict} |" in markdown
    page = (tmp_path / "report.html").read_text()
    assert f">{cases}</td>" in page
    assert f"{ws['passed']}/{ws['total']} " in page
    assert f">{verdict}</span>" in page


def test_model_names_that_differ_only_at_the_end_get_distinct_rows(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(pytester.path)
    first, second = (
        "anthropic:claude-sonnet-4-5-20250929",
        "anthropic:claude-sonnet-4-5-20250514",
    )
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--skill-cache=off",
        "--skill-model",
        first,
        "--skill-model",
        second,
    )
    rows = [line.split()[0] for line in result.outlines if line.startswith("anthropic:claude")]
    assert len(rows) == 2 and rows[0] != rows[1], rows
    assert f"is {first}" in result.stdout.str() and f"is {second}" in result.stdout.str()


def test_short_names_stay_distinct_and_within_the_width() -> None:
    names = ["x" * 40 + "a", "x" * 40 + "b", "short"]
    shown = short_names(names, 28)
    assert len(set(shown.values())) == 3
    assert all(len(text) <= 28 for text in shown.values())
    assert shown["short"] == "short"
