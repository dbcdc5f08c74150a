"""Record once, replay offline: the cache through the plugin and on its own."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from pytest_skills.execution.cache import CacheError, ResponseCache, SecretInEntryError, find_secret
from pytest_skills.execution.secrets import secret_values
from pytest_skills.models import Request, Response, Sampling, Usage
from tests.conftest import (
    HAIKU,
    TWELVE_CASES,
    HoldAfter,
    run_killed_mid_run,
    write_skill,
)
from tests.loopback import LoopbackServer


def run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, f"--skill-cache-dir={cache}", "-p", "no:cacheprovider", *args
    )


def models_section(path: Path) -> list[dict]:
    return json.loads(path.read_text())["models"]


# --- through the plugin -------------------------------------------------------------


def test_replay_after_the_provider_is_gone_gives_the_same_figures(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    live = run(pytester, cache, "--skill-report", str(tmp_path / "live.json"))
    live.assert_outcomes(passed=2)
    assert len(provider_env.calls) == 4

    provider_env.stop()
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("CI", "true")
    replay = run(pytester, cache, "--skill-report", str(tmp_path / "replay.json"))
    replay.assert_outcomes(passed=2)
    replay.stdout.fnmatch_lines(["*cache replay (CI is set)*"])
    assert models_section(tmp_path / "live.json") == models_section(tmp_path / "replay.json")
    replayed = json.loads((tmp_path / "replay.json").read_text())["results"]
    assert all(result["cached"] for result in replayed)
    assert not any(r["cached"] for r in json.loads((tmp_path / "live.json").read_text())["results"])


def test_a_changed_skill_misses_and_says_why(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    skill_dir = write_skill(pytester.path)
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=2)

    skill_md = skill_dir / "SKILL.md"
    skill_md.write_text(skill_md.read_text() + "\nAlso be brief.\n")
    result = run(pytester, cache, "--skill-cache=replay")
    result.assert_outcomes(failed=2)
    # Each item: one line saying what differs. The fix: one command, said once.
    result.stdout.fnmatch_lines(
        [
            "*not in the cache (the nearest recorded entry differs in: skill text) (the skills*",
            f"  {HAIKU}: 2 answer(s) not in the cache: record them with the model reachable:",
            f"    pytest demo/demo.skill.yaml --skill-model {HAIKU} --skill-cache=auto",
        ]
    )
    assert result.stdout.str().count("--skill-cache=auto") == 1
    assert "Traceback" not in result.stdout.str()
    # The command it gives records exactly what was missing, and replay passes again.
    rerecord = run(pytester, cache, "demo/demo.skill.yaml", "--skill-cache=auto")
    rerecord.assert_outcomes(passed=2)
    run(pytester, cache, "--skill-cache=replay").assert_outcomes(passed=2)


def test_replay_miss_names_a_changed_sampling_parameter(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(
        pytester.path,
        cases_yaml="""
        defaults: {max_tokens: 200}
        cases:
          - {id: one, input: hello, expect: {contains: echo}}
    """,
    )
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=1)
    yaml_file = pytester.path / "demo" / "demo.skill.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("200", "300"))
    result = run(pytester, cache, "--skill-cache=replay")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*differs in: max_tokens (300)*"])


def test_auto_calls_only_for_what_is_missing(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=2)
    assert len(provider_env.calls) == 4
    run(pytester, cache).assert_outcomes(passed=2)
    assert len(provider_env.calls) == 4, "a second auto run must be served from the cache"
    run(pytester, cache, "--skill-cache=refresh").assert_outcomes(passed=2)
    assert len(provider_env.calls) == 8
    run(pytester, cache, "--skill-cache=off").assert_outcomes(passed=2)
    assert len(provider_env.calls) == 12


def test_secrets_never_reach_the_cache(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-very-secret-value-0042"
    monkeypatch.setenv("MY_SERVICE_TOKEN", secret)
    provider_env.responder = lambda call: (
        f"the token is {secret}" if "leak" in call.prompt else "ok"
    )
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - {id: leaky, input: please leak it, expect: {contains: token}}
          - {id: fine, input: hello, expect: {contains: ok}}
    """,
    )
    cache = tmp_path / "cache"
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run(pytester, cache, f"--skill-report={report}", f"--junitxml={junit}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*not cached: the answer contains the value of $MY_SERVICE_TOKEN*"]
    )
    for written in (report, junit):
        assert secret not in written.read_text()
    assert "the token is [redacted $MY_SERVICE_TOKEN]" in report.read_text()
    stored = b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert b"test-anthropic-key-123" not in stored
    assert len(ResponseCache(cache).keys()) == 2, "only the clean answers are stored"


def test_unused_entries_are_reported_and_pruned(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=2)
    yaml_file = pytester.path / "demo" / "demo.skill.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("Repeat after me", "Say it again"))
    result = run(pytester, cache)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["skills: 2 cache entries unused by this run*"])
    # A narrowed run says nothing: entries of deselected cases are not unused.
    narrowed = run(pytester, cache, "-k", "echoes")
    assert "cache entries unused" not in narrowed.stdout.str()
    # Asked to prune on a narrowed run, it says why it did not.
    refused = run(pytester, cache, "-k", "echoes", "--skill-cache-prune")
    refused.stdout.fnmatch_lines(["skills: --skill-cache-prune removed nothing: it needs a run*"])
    assert len(ResponseCache(cache).keys()) == 6
    pruned = run(pytester, cache, "--skill-cache-prune")
    pruned.stdout.fnmatch_lines(["skills: 2 cache entries removed"])
    assert len(ResponseCache(cache).keys()) == 4


def test_a_corrupt_cache_gives_the_way_out(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cache.db").write_bytes(b"this is not a database" * 100)
    result = run(pytester, cache)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*response cache at*delete the directory*--skill-cache=off*"])
    assert "Traceback" not in result.stdout.str()


def test_workers_share_one_cache(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    for name in ("alpha", "beta", "gamma"):
        write_skill(
            pytester.path,
            name,
            cases_yaml=f"""
            cases:
              - {{id: one, input: first about {name}, expect: {{contains: echo}}}}
              - {{id: two, input: second about {name}, expect: {{contains: echo}}}}
        """,
        )
    cache = tmp_path / "cache"
    run(pytester, cache, "-n", "2").assert_outcomes(passed=6)
    assert len(provider_env.calls) == 12, "each worker calls only for its own items"
    assert len(ResponseCache(cache).keys()) == 12
    provider_env.stop()
    run(pytester, cache, "-n", "2", "--skill-cache=replay").assert_outcomes(passed=6)


def test_killed_run_leaves_a_usable_cache(pytester: pytest.Pytester, tmp_path: Path) -> None:
    write_skill(pytester.path, cases_yaml=TWELVE_CASES)
    cache = tmp_path / "cache"
    # 8 answers come back; the next calls hang until the run has been killed.
    responder = HoldAfter(8)
    with LoopbackServer(responder=responder) as server:
        command, env = run_killed_mid_run(server, responder, pytester.path, cache)
        before = len(server.calls)
        assert len(ResponseCache(cache).keys()) == 8

        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stdout[-2000:]
        made = len(server.calls) - before
    # Every answer recorded before the kill is reused: only the 16 missing are called.
    assert made == 24 - 8
    assert len(ResponseCache(cache).keys()) == 24


# --- the store on its own ----------------------------------------------------------


def _request(**changes: object) -> Request:
    fields: dict[str, object] = {
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "prompt": "hi",
        "system": "# Skill: x",
    }
    fields.update(changes)
    return Request(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_recorded_figure(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    response = Response(
        "answer",
        Usage(10, 5, 3, 2),
        latency_s=1.25,
        stop_reason="end_turn",
        reported_model="claude-haiku-4-5-20251001",
        recorded_at="2026-11-24T00:00:00+00:00",
    )
    cache.put(_request(), response, "f::c")
    replayed = cache.get(_request())
    assert replayed is not None and replayed.cached
    assert (
        replayed.text,
        replayed.usage,
        replayed.latency_s,
        replayed.stop_reason,
        replayed.reported_model,
        replayed.recorded_at,
    ) == (
        "answer",
        Usage(10, 5, 3, 2),
        1.25,
        "end_turn",
        "claude-haiku-4-5-20251001",
        "2026-11-24T00:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"system": "# Skill: y"}, "skill text"),
        ({"prompt": "hello"}, "case input"),
        ({"model": "claude-sonnet-4-6"}, "model id"),
        ({"sampling": Sampling(temperature=0.7)}, "temperature"),
        ({"trial": 3}, "trial index"),
    ],
)
def test_a_miss_names_what_differs(tmp_path: Path, change: dict, named: str) -> None:
    cache = ResponseCache(tmp_path)
    cache.put(_request(), Response("a"), "f::c")
    cache.put(_request(prompt="other", system=None), Response("b"), "f::other")
    changed = _request(**change)
    assert cache.get(changed) is None
    assert named in cache.explain_miss(changed, "f::c")


def test_the_key_ignores_what_does_not_change_the_answer() -> None:
    assert _request().key == _request().key
    assert _request().key != _request(base_url="http://127.0.0.1:1/v1").key
    assert "api_key" not in json.dumps(_request().key_fields())


def test_secret_detection_needs_a_secret_name_and_a_real_value() -> None:
    environ = {"OPENAI_API_KEY": "sk-abcdefgh123", "HOME": "/root", "GH_TOKEN": "1"}
    assert find_secret("xx sk-abcdefgh123 yy", secret_values(environ)) == "OPENAI_API_KEY"
    assert find_secret("/root and 1", secret_values(environ)) is None


def test_put_refuses_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_SECRET", "hunter2hunter2")
    cache = ResponseCache(tmp_path)
    with pytest.raises(SecretInEntryError, match="DEPLOY_SECRET"):
        cache.put(_request(), Response("hunter2hunter2"), "f::c")
    assert cache.get(_request()) is None


@pytest.mark.parametrize("read_only", [False, True], ids=["auto", "replay"])
def test_a_cache_file_another_worker_is_still_creating_reads_as_empty(
    tmp_path: Path, read_only: bool
) -> None:
    # The moment between another xdist worker's diskcache creating cache.db and making
    # its Cache table, held still: a read then must find nothing, not fail the item.
    db = sqlite3.connect(tmp_path / "cache.db")
    # diskcache's own statement, to the space: anything else is a schema not its own.
    db.execute("CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, value)")
    db.commit()
    db.close()
    cache = ResponseCache(tmp_path, read_only=read_only)
    cache.prefetch([_request()])
    assert cache.get(_request()) is None
    assert cache.keys() == set()
    if not read_only:
        cache.put(_request(), Response("recorded"), "f::c")
        replayed = ResponseCache(tmp_path, read_only=True).get(_request())
        assert replayed is not None and replayed.text == "recorded"


def test_unopenable_directory_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="--skill-cache-dir"):
        ResponseCache(blocker / "cache").get(_request())


def test_replay_and_cached_auto_runs_leave_the_cache_byte_for_byte_unchanged(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=2)
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    run(pytester, cache, "--skill-cache=replay").assert_outcomes(passed=2)
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before
    # An auto run served wholly from the cache writes nothing either...
    run(pytester, cache).assert_outcomes(passed=2)
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before
    # ...and one that records reads the old entries and adds the new one.
    yaml_file = pytester.path / "demo" / "demo.skill.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("Repeat after me", "Say it again"))
    calls_before = len(provider_env.calls)
    run(pytester, cache).assert_outcomes(passed=2)
    assert len(provider_env.calls) == calls_before + 2
    assert len(ResponseCache(cache).keys()) == 6


def test_prune_works_in_replay_mode(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=2)
    yaml_file = pytester.path / "demo" / "demo.skill.yaml"
    text = yaml_file.read_text()
    yaml_file.write_text(text[: text.index("  - id: echoes")])  # drop the second case
    result = run(pytester, cache, "--skill-cache=replay", "--skill-cache-prune")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["skills: 2 cache entries removed"])
    assert len(ResponseCache(cache).keys()) == 2
