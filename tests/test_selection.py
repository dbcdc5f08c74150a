"""Selecting skill items the way pytest users do: --lf, --ff, --sw, -k and node ids.

pytest 9 reads a node id such as ``f.skill.yaml::case[model]`` as a name plus
parameters; skill items are made so that ids from --lf's cache, the command line
and -k all find them, as they find parametrised test functions.
"""

from __future__ import annotations

import pytest

from tests.conftest import HAIKU, write_skill
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.usefixtures("provider_env")

CASES = """
    cases:
      - id: passes
        input: Repeat after me
        expect: {contains: echo}
      - id: fails
        input: Say nothing useful
        expect: {contains: absent}
      - id: also-passes
        input: Repeat this too
        expect: {contains: echo}
"""
FAILED_ID = f"demo/demo.skill.yaml::fails[{HAIKU}]"


def literal(text: str) -> str:
    """``text`` as an fnmatch pattern that matches only itself (brackets escaped)."""
    return "".join({"[": "[[]", "]": "[]]"}.get(char, char) for char in text)


FIXTURE_TESTS = """
def test_passes(skill_model):
    assert "echo" in skill_model.ask("hello", baseline=True).text

def test_fails(skill_model):
    assert "absent" in skill_model.ask("hello again", baseline=True).text
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The cache provider stays on: --lf, --ff and --sw live in it.
    return pytester.runpytest("--skill-model", HAIKU, "--skill-cache=off", *args)


def test_lf_reruns_exactly_the_failed_skill_item(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    run(pytester).assert_outcomes(passed=2, failed=1)
    before = len(provider_env.calls)
    again = run(pytester, "--lf", "-v")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    again.stdout.fnmatch_lines([literal(FAILED_ID) + " FAILED*"])
    assert "known failures not in selected tests" not in again.stdout.str()
    # Only the failed item's two calls (with and without the skill) were made again.
    assert len(provider_env.calls) - before == 2


def test_ff_runs_the_failed_skill_item_first(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    run(pytester).assert_outcomes(passed=2, failed=1)
    first = run(pytester, "--ff", "-v")
    first.assert_outcomes(passed=2, failed=1)
    ran = [line for line in first.stdout.lines if line.startswith("demo/demo.skill.yaml::")]
    assert ran[0].startswith(FAILED_ID + " FAILED"), ran


def test_sw_resumes_at_the_failed_skill_item(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    run(pytester, "--sw").assert_outcomes(passed=1, failed=1)
    resumed = run(pytester, "--sw")
    # The item before the failure is not run again; the run stops at the failure.
    resumed.assert_outcomes(failed=1)
    resumed.stdout.fnmatch_lines(["*1 deselected*"])


@pytest.mark.parametrize(
    "selection",
    [("-k", "fails"), ("-k", f"fails and {HAIKU}"), (FAILED_ID,)],
    ids=["keyword", "keyword-and-model", "node-id"],
)
def test_one_skill_item_is_selected_by_keyword_or_id(
    pytester: pytest.Pytester, selection: tuple[str, ...]
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    result = run(pytester, "-v", *selection)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal(FAILED_ID) + " FAILED*"])


def test_lf_reruns_exactly_the_failed_fixture_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=FIXTURE_TESTS)
    run(pytester).assert_outcomes(passed=1, failed=1)
    again = run(pytester, "--lf", "-v")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines([f"test_app.py::test_fails[[]{HAIKU}[]] FAILED*"])


def test_lf_works_under_xdist(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    pytester.makepyfile(test_app=FIXTURE_TESTS)
    run(pytester, "-n", "2").assert_outcomes(passed=3, failed=2)
    again = run(pytester, "-n", "2", "--lf")
    again.assert_outcomes(failed=2)  # and nothing else: the three passing tests stay out
    again.stdout.fnmatch_lines(["*2 workers [[]2 items[]]*"])
