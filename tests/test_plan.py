"""--skill-plan makes no call and prints what the suite can detect and cost;
--skill-max-cost refuses a live run over budget."""

from __future__ import annotations

from pathlib import Path

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import pytest

from tests.conftest import HAIKU, write_skill
from tests.loopback import LoopbackServer

#: Twelve cases: the skill fixes the even ones.
CASES = "cases:\n" + "".join(
    f"  - {{id: c{i:02d}, input: question {i}, expect: {{contains: "
    f"{'skill' if i % 2 == 0 else 'echo'}}}}}\n"
    for i in range(12)
)


def _run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, f"--skill-cache-dir={cache}", *args
    )


def test_the_plan_calls_nothing_and_measures_discordance_from_recordings(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    cache = tmp_path / "cache"
    before = _run(pytester, cache, "--skill-plan")
    assert provider_env.calls == []
    before.stdout.fnmatch_lines(
        [
            "*skills plan (no call made)*",
            f"{HAIKU}: 12 cases x 1 trial(s); discordance 50% (assumed 50%: nothing recorded yet)",
            "  smallest lift detected with 80% power: +*pp; +15pp needs * cases",
            "  24 calls, 24 live (the rest recorded): about * input and 24,576 output tokens, $*",
        ]
    )
    assert "passed" not in before.stdout.str().splitlines()[-1]

    _run(pytester, cache).assert_outcomes(passed=12)
    assert len(provider_env.calls) == 24
    after = _run(pytester, cache, "--skill-plan")
    assert len(provider_env.calls) == 24  # the plan called nothing
    # Six of twelve cases pass only with the skill (the echo without it lacks the word).
    after.stdout.fnmatch_lines(
        [
            f"{HAIKU}: 12 cases x 1 trial(s); discordance 50% (measured on 12 recorded case(s))",
            "  24 calls, 0 live (the rest recorded): about 0 input and 0 output tokens, $0.00",
        ]
    )


def test_max_cost_refuses_a_live_run_over_budget_and_allows_a_replay(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    cache = tmp_path / "cache"
    refused = _run(pytester, cache, "--skill-max-cost", "0.0001")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stdout.fnmatch_lines(["*estimated at $0.*, $0.* over --skill-max-cost 0.0001*"])
    assert provider_env.calls == []
    _run(pytester, cache, "--skill-max-cost", "5").assert_outcomes(passed=12)
    replay = _run(pytester, cache, "--skill-max-cost", "0")  # all recorded: costs nothing
    replay.assert_outcomes(passed=12)
    assert len(provider_env.calls) == 24


def test_plan_on_a_model_with_no_known_price_says_so(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--skill-model",
        "openai:no-price-model",
        "--skill-plan",
        f"--skill-cache-dir={tmp_path}",
    )
    result.stdout.fnmatch_lines(["*tokens, price not known"])
    assert provider_env.calls == []


def test_the_aa_control_runs_the_skill_arm_twice_and_counts_false_verdicts(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    import json

    write_skill(pytester.path, cases_yaml=CASES)
    report = tmp_path / "report.json"
    result = _run(pytester, tmp_path / "cache", "--skill-aa", f"--skill-report={report}")
    result.assert_outcomes(passed=12)
    # skill, baseline and aa: 36 calls, the aa arm's under other trial indices.
    assert len(provider_env.calls) == 36
    result.stdout.fnmatch_lines(
        ["skills: A/A control: skill vs aa * called a difference in 0 of 1 comparison(s) (0%)"]
    )
    data = json.loads(report.read_text())
    assert data["aa"] == {"comparisons": 1, "false_verdicts": 0, "rate": 0.0}
    (aa,) = [c for c in data["models"][0]["comparisons"] if c["b"] == "aa"]
    assert aa["lift"] == 0 and aa["verdict"] == "inconclusive"


def test_auto_trials_add_trials_only_where_outcomes_vary_and_say_where_they_stopped(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    import itertools
    import json

    from tests.loopback import Call, echo

    counter = itertools.count()

    def coin(call: Call) -> str:
        # "flip" cases pass with the skill every other time; the rest are deterministic.
        if "flip" in call.prompt and call.system:
            return echo(call) if next(counter) % 2 else "nothing here"
        return echo(call)

    provider_env.responder = coin
    write_skill(
        pytester.path,
        cases_yaml="cases:\n"
        + "".join(
            f"  - {{id: s{i}, input: steady {i}, expect: {{contains: skill}}}}\n" for i in range(7)
        )
        + "  - {id: flip, input: flip question, expect: {contains: skill}}\n",
    )
    report = tmp_path / "report.json"
    result = _run(
        pytester,
        tmp_path / "cache",
        "--skill-trials",
        "auto:4",
        "--skill-pass-threshold=0.5",
        f"--skill-report={report}",
    )
    result.stdout.fnmatch_lines([f"skills: {HAIKU}: trials stopped at look * (*haybittle-peto*"])
    data = json.loads(report.read_text())
    trials = {}
    for row in data["results"]:
        if row["arm"] == "skill":
            trials[row["case"]] = trials.get(row["case"], 0) + 1
    # Steady cases keep the two first trials; only the varying one gets more.
    assert all(trials[f"s{i}"] == 2 for i in range(7)), trials
    assert 2 < trials["flip"] <= 4, trials
    # Under xdist the workers take the rounds; the controller says where they stopped.
    made = len(provider_env.calls)
    again = _run(
        pytester, tmp_path / "cache", "-n", "2", "--skill-trials", "auto:4",
        "--skill-pass-threshold=0.5",
    )  # fmt: skip
    again.stdout.fnmatch_lines([f"skills: {HAIKU}: trials stopped at look * (*haybittle-peto*"])
    assert len(provider_env.calls) == made, "the same rounds, replayed"
