"""-q keeps the table, -qq drops it, -v adds the intervals."""

from __future__ import annotations

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import HAIKU, write_skill
from tests.plugin_runs import ROW, run

pytestmark = pytest.mark.usefixtures("provider_env")


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
