"""The two hooks from conftests: check kinds and backends."""

from __future__ import annotations

import textwrap

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import write_skill
from tests.loopback import LoopbackServer
from tests.plugin_runs import run

pytestmark = pytest.mark.usefixtures("provider_env")


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
