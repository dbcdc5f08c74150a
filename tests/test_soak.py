"""The xdist soak: twenty ``-n 4`` runs over one cache, each replaying most answers and
recording a few, with secrets in the environment. Every run must end, and afterwards
every answer any run recorded must be in the cache.

Scaled to about 200 CPU-seconds (under two minutes on an idle 2-core machine), most of it
starting 21 x 5 Python processes: 54 cases per run (108 calls: 100 replayed, 8
recorded), concurrency 16 per worker. ``-m "not soak"`` skips it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_skills.execution.cache import ResponseCache
from tests.conftest import HAIKU, write_skill
from tests.loopback import LoopbackServer

RUNS, SHARED_CASES, NEW_CASES_PER_RUN, WORKERS = 20, 50, 4, 4
#: A hang guard per run, not a speed limit: a run takes a few seconds.
RUN_TIMEOUT_S = 600


def cases_yaml(names: list[str]) -> str:
    lines = ["cases:"]
    lines += [
        f"  - {{id: {name}, input: question {name}, expect: {{contains: echo}}}}" for name in names
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.soak
@pytest.mark.slow
def test_twenty_xdist_runs_over_one_cache_all_end_and_keep_every_answer(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Secret scans run on every write; the environment changes under them as tests run.
    monkeypatch.setenv("SOAK_SERVICE_TOKEN", "soak-secret-value-0001")
    cache = tmp_path / "cache"
    shared = [f"s{i}" for i in range(SHARED_CASES)]
    options = [
        "--skill-model",
        HAIKU,
        f"--skill-cache-dir={cache}",
        "-p",
        "no:cacheprovider",
        "-n",
        str(WORKERS),
        "--skill-concurrency=16",
    ]
    recorded: list[str] = []
    for run in range(RUNS):
        fresh = [f"r{run}-{j}" for j in range(NEW_CASES_PER_RUN)]
        write_skill(pytester.path, cases_yaml=cases_yaml(shared + fresh))
        result = pytester.runpytest_subprocess(*options, timeout=RUN_TIMEOUT_S)
        assert result.ret == 0, f"run {run}:\n" + "\n".join(result.outlines[-30:])
        result.assert_outcomes(passed=SHARED_CASES + NEW_CASES_PER_RUN)
        recorded += fresh

    expected_calls = 2 * (SHARED_CASES + len(recorded))
    assert len(provider_env.calls) == expected_calls, "every answer was called for once"
    store = ResponseCache(cache, read_only=True)
    assert len(store.keys()) == expected_calls
    store.close()
    # Every answer any run recorded replays, offline, under xdist.
    provider_env.stop()
    write_skill(pytester.path, cases_yaml=cases_yaml(shared + recorded))
    replay = pytester.runpytest_subprocess(*options, "--skill-cache=replay", timeout=RUN_TIMEOUT_S)
    replay.assert_outcomes(passed=SHARED_CASES + len(recorded))
    assert not (cache / "cache.db-wal").exists(), "the last writer folded its log"
