"""``--skill-batch`` end to end: the real SDKs against the loopback server's batch
endpoints, a run that sends, a run that collects, failures, xdist and waiting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_skills.execution.batch_ledger import LEDGER_DIR
from pytest_skills.report.pricing import PRICES
from tests.conftest import HAIKU, write_skill
from tests.loopback import LoopbackServer

GPT = "openai:gpt-4.1-mini"
#: Four cases, two of which the skill decides: with the skill 4/4, without it 2/4.
CASES = """
    cases:
      - {id: one, input: first question, expect: {contains: "skill: demo"}}
      - {id: two, input: second question, expect: {contains: "skill: demo"}}
      - {id: three, input: third question, expect: {contains: echo}}
      - {id: four, input: fourth question, expect: {contains: echo}}
"""


def run(pytester: pytest.Pytester, cache: Path, *args: str, models: tuple[str, ...] = (HAIKU,)):
    chosen = [part for model in models for part in ("--skill-model", model)]
    return pytester.runpytest(
        "-p", "no:cacheprovider", *chosen, f"--skill-cache-dir={cache}", "-rs", *args
    )  # fmt: skip


def figures(report: Path) -> list[tuple]:
    """What a report says per model, but for what a batch cannot know (latency, cost)."""
    data = json.loads(report.read_text())
    return [
        (m["model"], m["cases"], m["with_skill"], m["baseline"], m["lift"], m["comparisons"])
        for m in data["models"]
    ]


def ledger_files(cache: Path) -> list[Path]:
    return sorted((cache / LEDGER_DIR).glob("*.json"))


@pytest.mark.parametrize("model", [HAIKU, GPT])
def test_a_run_sends_a_batch_and_a_later_run_collects_it_with_a_live_runs_figures(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    live_report, batch_report = tmp_path / "live.json", tmp_path / "batch.json"
    live = run(pytester, tmp_path / "live", f"--skill-report={live_report}", models=(model,))
    live.assert_outcomes(passed=4)
    live_calls = len(provider_env.calls)
    assert live_calls == 8

    cache = tmp_path / "cache"
    sent = run(pytester, cache, "--skill-batch", models=(model,))
    sent.assert_outcomes(skipped=4)
    assert len(provider_env.calls) == live_calls, "nothing went live"
    (batch,) = provider_env.batches
    assert len(batch.requests) == 8
    sent.stdout.fnmatch_lines(
        [
            f"*skills: batches: {model} (*)*",
            f"skills: 8 call(s) of {model} pending in batch {batch.id}: their items were "
            "skipped; run again*",
            # Skipped at the cases' file, not in pytest-skills' code, with the batch named.
            f"SKIPPED ?4? demo/demo.skill.yaml*: pending in batch {batch.id}, 8 calls; run "
            "again to collect",
        ]
    )
    assert len(ledger_files(cache)) == 1

    # Still in progress: the next run looks, sends nothing more, and waits on.
    again = run(pytester, cache, "--skill-batch", models=(model,))
    again.assert_outcomes(skipped=4)
    assert provider_env.batch_submissions == 1

    provider_env.end_batches()
    collected = run(
        pytester, cache, "--skill-batch", f"--skill-report={batch_report}", models=(model,)
    )
    collected.assert_outcomes(passed=4)
    assert provider_env.batch_submissions == 1 and len(provider_env.calls) == live_calls
    assert ledger_files(cache) == [], "a collected batch leaves the ledger"
    assert figures(batch_report) == figures(live_report)
    collected.stdout.fnmatch_lines([f"skills: 8 answer(s) of {model} from batch {batch.id}*"])

    data = json.loads(batch_report.read_text())
    assert {r["batch"] for r in data["results"]} == {batch.id}
    # Priced at half the list price, from the answers' own usage.
    per_input, per_output, per_read, per_write = PRICES[model]
    skill = [r["usage"] for r in data["results"] if r["arm"] == "skill"]
    listed = (
        sum(
            u["input_tokens"] * per_input
            + u["output_tokens"] * per_output
            + u["cache_read_tokens"] * per_read
            + u["cache_write_tokens"] * per_write
            for u in skill
        )
        / 1_000_000
    )
    assert data["models"][0]["cost_usd"]["with_skill"] == pytest.approx(listed / 2)

    # The answers replay in CI like any others: nothing is called.
    monkeypatch.setenv("CI", "true")
    replay = run(pytester, cache, models=(model,))
    replay.assert_outcomes(passed=4)
    assert len(provider_env.calls) == live_calls and provider_env.batch_submissions == 1


def test_errored_and_expired_requests_are_said_once_and_the_next_run_sends_them_again(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    cache = tmp_path / "cache"
    run(pytester, cache, "--skill-batch").assert_outcomes(skipped=4)
    (first,) = provider_env.batches
    fates = {}
    for custom_id, body in first.requests:
        prompt = json.dumps(body)
        fates[custom_id] = (
            "errored" if "first question" in prompt else "expired" if "second" in prompt else ""
        )
    provider_env.end_batches(lambda custom_id, index: fates[custom_id] or "succeeded")

    collected = run(pytester, cache, "--skill-batch")
    collected.assert_outcomes(passed=2, skipped=2)
    collected.stdout.fnmatch_lines(
        [
            f"skills: 4 call(s) of {HAIKU} did not succeed in batch {first.id}*",
            "SKIPPED * errored in batch *: invalid_request_error: *; the next run sends it again",
            "SKIPPED * expired in batch *; the next run sends it again",
        ]
    )
    assert ledger_files(cache) == []

    # Sent again, in a new batch holding exactly the four that failed.
    resent = run(pytester, cache, "--skill-batch")
    resent.assert_outcomes(passed=2, skipped=2)
    assert provider_env.batch_submissions == 2
    assert set(provider_env.batches[1].custom_ids) == {k for k, fate in fates.items() if fate}
    # ... or live, without --skill-batch.
    calls = len(provider_env.calls)
    live = run(pytester, tmp_path / "elsewhere")
    live.assert_outcomes(passed=4)
    assert len(provider_env.calls) == calls + 8


def test_under_xdist_one_batch_is_sent_per_model(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    cache = tmp_path / "cache"
    sent = run(pytester, cache, "--skill-batch", "-n", "2", models=(HAIKU, GPT))
    sent.assert_outcomes(skipped=8)
    assert provider_env.batch_submissions == 2
    assert sorted(batch.api for batch in provider_env.batches) == ["anthropic", "openai"]
    # Each call counted once, though both workers found the batches.
    for model in (HAIKU, GPT):
        sent.stdout.fnmatch_lines([f"skills: 8 call(s) of {model} pending*"])
    provider_env.end_batches()
    report = tmp_path / "report.json"
    collected = run(
        pytester, cache, "--skill-batch", "-n", "2", f"--skill-report={report}",
        models=(HAIKU, GPT),
    )  # fmt: skip
    collected.assert_outcomes(passed=8)
    assert provider_env.batch_submissions == 2 and provider_env.calls == []
    assert len(json.loads(report.read_text())["results"]) == 16


def test_batch_wait_polls_until_the_batch_ends_and_grades_in_one_run(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    provider_env.end_batches_after(3)
    waited = run(
        pytester, tmp_path / "cache", "--skill-batch", "--skill-batch-wait",
        "--skill-batch-poll=0.001",
    )  # fmt: skip
    waited.assert_outcomes(passed=4)
    (batch,) = provider_env.batches
    waited.stdout.fnmatch_lines([f"*batch {batch.id} ({HAIKU}): * of 8 done, ended*"])
    assert provider_env.calls == []


def test_a_compatible_server_has_no_batch_api_and_runs_live(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    compatible = f"openai:qwen3@{provider_env.openai_url}"
    result = run(pytester, tmp_path / "cache", "--skill-batch", models=(compatible, HAIKU))
    result.assert_outcomes(passed=4, skipped=4)
    result.stdout.fnmatch_lines([f"*live: {compatible} (a compatible server's: no batch API)*"])
    assert len(provider_env.calls) == 8 and provider_env.batch_submissions == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--skill-cache=replay",), "*--skill-batch * needs --skill-cache=auto (replay)*"),
        (("--skill-trials", "auto"), "*--skill-batch sends a fixed number of trials*"),
    ],
)
def test_settings_a_batch_cannot_work_with_are_refused(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path, args, message
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    result = run(pytester, tmp_path / "cache", "--skill-batch", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_ledger_file_that_is_not_ours_is_named_and_left_alone(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    cache = tmp_path / "cache"
    (cache / LEDGER_DIR).mkdir(parents=True)
    planted = cache / LEDGER_DIR / "planted.json"
    planted.write_text('{"version": 1, "batch": "../../etc", "requests": {}}')
    result = run(pytester, cache, "--skill-batch")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines([f"*{planted}: not a batch pytest-skills sent (*); it is left*"])
    assert planted.exists() and provider_env.batch_submissions == 1


def run_batch_like_vllm(server: LoopbackServer, source: Path, target: Path) -> None:
    """What ``vllm.entrypoints.openai.run_batch`` does with a batch file: each line's body
    sent to the server's Chat Completions endpoint, each answer written as an output line."""
    import urllib.request

    out = []
    for number, line in enumerate(source.read_text().splitlines()):
        request = json.loads(line)
        assert request["method"] == "POST" and request["url"] == "/v1/chat/completions"
        sent = urllib.request.Request(
            f"{server.openai_url}/chat/completions",
            data=json.dumps(request["body"]).encode(),
            headers={"content-type": "application/json", "authorization": "Bearer none"},
        )
        with urllib.request.urlopen(sent) as reply:
            body = json.loads(reply.read())
        out.append(
            {
                "id": f"vllm-{number}",
                "custom_id": request["custom_id"],
                "response": {"status_code": 200, "request_id": f"r{number}", "body": body},
                "error": None,
            }
        )
    target.write_text("".join(json.dumps(line) + "\n" for line in out))


def test_a_batch_file_for_vllm_round_trips_into_the_cache(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_skill(pytester.path, cases_yaml=CASES)
    cache, files = tmp_path / "cache", tmp_path / "files"
    compatible = f"openai:qwen3@{provider_env.openai_url}"
    exported = run(pytester, cache, f"--skill-batch-export={files}", models=(compatible,))
    assert exported.ret == 0 and provider_env.calls == []
    (batch_file,) = files.glob("*.jsonl")
    assert len(batch_file.read_text().splitlines()) == 8
    exported.stdout.fnmatch_lines([f"skills: wrote 8 calls of {compatible} to {batch_file}*"])

    output = tmp_path / "qwen3.out.jsonl"
    run_batch_like_vllm(provider_env, batch_file, output)
    with output.open("a") as lines:  # a result for no exported request, and a broken line
        lines.write('{"custom_id": "' + "0" * 64 + '", "response": {"status_code": 200}}\n')
        lines.write("not json\n")
    imported = run(pytester, cache, f"--skill-batch-import={output}", models=(compatible,))
    assert imported.ret == 0
    imported.stdout.fnmatch_lines(
        [
            f"skills: recorded 8 answers of {compatible} from {output}",
            "skills: 1 result line(s) could not be read (first: line 10 of * is not JSON)",
            "skills: 1 result(s) answer no exported request: left out",
        ]
    )
    assert ledger_files(cache) == []

    # The suite now replays in CI from what the file answered.
    monkeypatch.setenv("CI", "true")
    calls = len(provider_env.calls)
    replay = run(pytester, cache, models=(compatible,))
    replay.assert_outcomes(passed=4)
    assert len(provider_env.calls) == calls


def test_importing_without_an_export_says_what_to_do(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text("")
    # In a process of its own: pytester's in-process runs cannot report an exit status
    # given before the session is configured.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--skill-cache-dir={tmp_path / 'cache'}",
        f"--skill-batch-import={output}",
    )  # fmt: skip
    assert result.ret == 2
    result.stderr.fnmatch_lines(
        ["pytest-skills: no exported batch is listed in *--skill-batch-export DIR first*"]
    )


def test_a_prune_while_items_wait_for_a_batch_removes_none_of_their_answers(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    from pytest_skills.execution.cache import ResponseCache

    cache = tmp_path / "cache"
    write_skill(pytester.path, cases_yaml=CASES)
    run(pytester, cache).assert_outcomes(passed=4)  # 8 answers recorded live
    five = CASES + "      - {id: five, input: fifth question, expect: {contains: echo}}\n"
    write_skill(pytester.path, cases_yaml=five)
    run(pytester, cache, "--skill-arms=skill", "-k", "five").assert_outcomes(passed=1)
    # Case five's baseline answer goes to a batch; its skill answer is recorded.
    waiting = run(pytester, cache, "--skill-batch", "--skill-cache-prune")
    waiting.assert_outcomes(passed=4, skipped=1)
    waiting.stdout.fnmatch_lines(["*removed nothing*items waiting for a batch*"])
    store = ResponseCache(cache, read_only=True)
    assert len(store.keys()) == 9, "case five's recorded answer is kept"
    store.close()
