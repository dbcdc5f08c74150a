"""Under xdist the outcomes and the report are those of a single process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import HAIKU, write_skill
from tests.loopback import LoopbackServer
from tests.plugin_runs import read_report, run

pytestmark = pytest.mark.usefixtures("provider_env")


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
