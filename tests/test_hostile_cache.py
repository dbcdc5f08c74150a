"""A committed cache is input from anywhere: it never runs code, never reaches outside its
directory, and an odd entry fails one item with the way out, never the session."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import diskcache
import pytest

from pytest_skills.execution.cache import CacheError, ResponseCache, UnreadableEntryError
from pytest_skills.models import Request, Response
from tests.conftest import (
    HAIKU,
    TWELVE_CASES,
    HoldAfter,
    committed_rows,
    run_killed_mid_run,
    write_skill,
)
from tests.conftest import output as everything
from tests.loopback import LoopbackServer


class _RunsCode:
    """Pickled, it stands for ``os.system(command)``: what a hostile pull request commits."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, f"--skill-cache-dir={cache}", "-p", "no:cacheprovider", *args
    )


def keys_of(cache: Path, case: str) -> list[str]:
    """The keys of a case's entries, the with-skill answer's first (it decides the item)."""
    store = ResponseCache(cache, read_only=True)
    try:
        entries = [e for e in store.entries() if e.label.endswith(f"::{case}")]
    finally:
        store.close()
    return [e.key for e in sorted(entries, key=lambda e: e.fields.get("system") is None)]


def stored_value(cache: Path, key: str) -> str:
    db = sqlite3.connect(cache / "cache.db")
    try:
        return db.execute("SELECT value FROM Cache WHERE key = ?", (key,)).fetchone()[0]
    finally:
        db.close()


def set_rows(cache: Path, keys: list[str], **columns: object) -> None:
    """Rewrite stored rows directly, as an edited cache.db in a pull request would."""
    db = sqlite3.connect(cache / "cache.db")
    assignments = ", ".join(f"{name} = ?" for name in columns)
    with db:
        for key in keys:
            db.execute(f"UPDATE Cache SET {assignments} WHERE key = ?", (*columns.values(), key))
    db.close()


@pytest.fixture
def recorded(pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path) -> Path:
    """A cache holding the answers of the default two cases (four entries)."""
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=2)
    return cache


@pytest.mark.parametrize(
    ("args", "passed"),
    [
        pytest.param(("--skill-cache=replay",), 1, id="replay"),  # the new case misses
        pytest.param(("--skill-cache=auto",), 2, id="auto"),
        pytest.param(("--skill-cache=auto", "-n", "2"), 2, id="auto-xdist"),
    ],
)
def test_a_pickled_entry_never_runs_code(
    pytester: pytest.Pytester, recorded: Path, tmp_path: Path, args: tuple[str, ...], passed: int
) -> None:
    marker = tmp_path / "pwned"
    poisoned = keys_of(recorded, "echoes")
    with diskcache.Cache(str(recorded)) as raw:
        for key in poisoned:
            raw.set(key, _RunsCode(f"touch {marker}"))  # stored in diskcache's pickle mode
    # A new case makes auto mode record (and so open the cache for writing); its input
    # sorts first, so it is asked before the poisoned entry is read.
    yaml_file = pytester.path / "demo" / "demo.skill.yaml"
    yaml_file.write_text(
        yaml_file.read_text() + "  - {id: fresh, input: A new question, expect: {contains: echo}}\n"
    )
    result = run(pytester, recorded, *args)
    assert not marker.exists(), "a cache entry ran code"
    result.assert_outcomes(passed=passed, failed=3 - passed)
    text = everything(result)
    assert "INTERNALERROR" not in text
    assert f"cache entry {poisoned[0][:12]}" in text or f"cache entry {poisoned[1][:12]}" in text
    assert "is unreadable: it is a pickle (which can run code when loaded)" in text
    assert f"--skill-model {HAIKU} --skill-cache=refresh" in text

    # Recording it again replaces the pickle with an entry we can read.
    run(pytester, recorded, "--skill-cache=refresh").assert_outcomes(passed=3)
    run(pytester, recorded, "--skill-cache=replay").assert_outcomes(passed=3)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["../outside.json", "/{tmp}/outside.json"])
def test_a_row_naming_a_file_outside_the_cache_is_neither_read_nor_deleted(
    pytester: pytest.Pytester, recorded: Path, tmp_path: Path, where: str
) -> None:
    outside = tmp_path / "outside.json"
    key = keys_of(recorded, "echoes")[0]
    # A valid entry, so that reading it at all would make the item pass.
    outside.write_text(stored_value(recorded, key))
    set_rows(recorded, [key], mode=3, filename=where.format(tmp=tmp_path), value=None)

    result = run(pytester, recorded, "--skill-cache=replay")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*unreadable: its value file *outside.json' lies outside the cache*"]
    )
    # Overwriting the row makes diskcache remove the file the row names: not this one.
    run(pytester, recorded, "-k", "echoes", "--skill-cache=refresh").assert_outcomes(passed=1)
    assert outside.exists()
    run(pytester, recorded, "--skill-cache=replay").assert_outcomes(passed=2)


ODD_VALUES = [
    pytest.param("[]", "it holds a JSON list, not an entry", id="list"),
    pytest.param("null", "it holds a JSON NoneType, not an entry", id="null"),
    pytest.param("{not json", "it is not JSON", id="not-json"),
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": ["a"]}}',
        "its answer ('text') is not a string",
        id="answer-not-a-string",
    ),
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": "a",'
        ' "usage": {"output_tokens": "many"}}}',
        "its usage.output_tokens is not a whole number of tokens: 'many'",
        id="tokens-not-a-number",
    ),
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": "a", "latency_s": "slow"}}',
        "its 'latency_s' is not a number of seconds: 'slow'",
        id="latency-not-a-number",
    ),
    # Values that once ended the session with a traceback and no report.
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": "a", "extra": {"adapted": ["a"]}}}',
        "its extra.adapted is not a string",
        id="adapted-a-list",
    ),
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": "a", "latency_s": 1e308}}',
        "its 'latency_s' is not a number of seconds: 1e+308",
        id="latency-1e308",
    ),
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": "a", "latency_s": NaN}}',
        "it holds NaN, which is not a JSON number",
        id="latency-nan",
    ),
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": "a", "usage": {"output_tokens": 1'
        + "0" * 400
        + "}}}",
        "its usage.output_tokens is not a whole number of tokens: an integer of about 401 digits",
        id="tokens-10**400",
    ),
    pytest.param(
        '{"label": "x", "fields": {}, "response": {"text": "a", "reasoning": 42}}',
        "its 'reasoning' is not a string",
        id="reasoning-not-a-string",
    ),
    pytest.param(
        '{"label": "x", "fields": {"provider": ["anthropic"]}, "response": {"text": "a"}}',
        "its fields.provider is a list, not a value",
        id="fields-provider-a-list",
    ),
]


@pytest.mark.parametrize(("value", "reason"), ODD_VALUES)
def test_an_odd_entry_fails_its_item_and_names_the_way_out(
    pytester: pytest.Pytester, recorded: Path, tmp_path: Path, value: str, reason: str
) -> None:
    key = keys_of(recorded, "echoes")[0]
    set_rows(recorded, [key], value=value)
    # Plus a replay miss: the nearest-entry search must step over the odd entry.
    yaml_file = pytester.path / "demo" / "demo.skill.yaml"
    yaml_file.write_text(
        yaml_file.read_text() + "  - {id: fresh, input: brand new, expect: {contains: echo}}\n"
    )
    report, page = tmp_path / "report.json", tmp_path / "report.html"
    result = run(
        pytester,
        recorded,
        "--skill-cache=replay",
        f"--skill-report={report}",
        f"--skill-html={page}",
        f"--skill-workspace={tmp_path / 'workspace'}",
    )
    result.assert_outcomes(passed=1, failed=2)
    assert page.is_file()
    text = everything(result)
    assert "INTERNALERROR" not in text and "Traceback" not in text
    result.stdout.fnmatch_lines(
        [
            f"*cache entry {key[:12]} in {recorded} is unreadable: {reason}.*",
        ]
    )
    # The way out, once: record the file's answers again, replacing the odd entry.
    result.stdout.fnmatch_lines(
        [
            f"  {HAIKU}: 1 cache entry(ies) unreadable: record them with the model reachable:",
            f"    pytest demo/demo.skill.yaml --skill-model {HAIKU} --skill-cache=refresh",
        ]
    )
    result.stdout.fnmatch_lines(["*not in the cache (nothing is recorded for this case*"])
    assert json.loads(report.read_text())["models"][0]["errors"] >= 1


def test_a_lone_surrogate_in_a_recorded_answer_is_replaced_not_fatal(
    pytester: pytest.Pytester, recorded: Path, tmp_path: Path
) -> None:
    key = keys_of(recorded, "echoes")[0]
    entry = json.loads(stored_value(recorded, key))
    entry["response"]["text"] += " \ud83d"  # half an emoji: no UTF-8 writer takes it
    set_rows(recorded, [key], value=json.dumps(entry))
    page, report = tmp_path / "report.html", tmp_path / "report.json"
    result = run(
        pytester,
        recorded,
        "--skill-cache=replay",
        f"--skill-html={page}",
        f"--skill-report={report}",
        f"--skill-workspace={tmp_path / 'workspace'}",
    )
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in everything(result)
    outputs = [r["output"] for r in json.loads(report.read_text())["results"]]
    assert any(output.endswith(" \ufffd") for output in outputs)
    assert "\ufffd" in page.read_text(encoding="utf-8")


def test_an_odd_entry_in_auto_mode_fails_the_item_too(
    pytester: pytest.Pytester, recorded: Path, provider_env: LoopbackServer
) -> None:
    set_rows(recorded, keys_of(recorded, "echoes"), value="[]")
    calls = len(provider_env.calls)
    result = run(pytester, recorded)
    result.assert_outcomes(passed=1, failed=1)
    assert len(provider_env.calls) == calls, "an unreadable entry is reported, not re-recorded"
    assert "--skill-cache=refresh" in result.stdout.str()


def test_unknown_settings_are_refused_before_writing(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    request = Request("anthropic", "claude-haiku-4-5", "hi")
    cache.put(request, Response("hello"), "f::c")
    cache.close()
    db = sqlite3.connect(tmp_path / "cache.db")
    with db:
        # diskcache would run "PRAGMA writable_schema = 1" and set an attribute from it.
        db.execute("INSERT INTO Settings VALUES ('sqlite_writable_schema', 1)")
    db.close()
    again = ResponseCache(tmp_path)
    # Not read either: a cache with a setting of anyone else's is not ours at all.
    with pytest.raises(CacheError, match=r"not one pytest-skills wrote(.|\n)*sqlite_writable"):
        again.get(request)
    with pytest.raises(CacheError, match=r"not one pytest-skills wrote(.|\n)*sqlite_writable"):
        again.put(Request("anthropic", "claude-haiku-4-5", "other"), Response("x"), "f::d")


def test_pickled_keys_are_never_decoded(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # With pytest-skills' settings: diskcache's defaults (an eviction policy) are not ours.
    with diskcache.Cache(str(tmp_path), eviction_policy="none", size_limit=2**40) as raw:
        raw.set(_RunsCode(f"touch {marker}"), "value")  # a pickled *key*
        raw.set("plain", "value")
    cache = ResponseCache(tmp_path)
    assert cache.keys() == {"plain"}
    assert list(cache.entries()) == []  # "value" is no entry: skipped, not fatal
    cache.delete(["plain"])
    assert not marker.exists()


def test_a_cache_path_that_is_a_file_says_so(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path)
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    result = run(pytester, blocker, "--skill-cache=replay")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*is a file, not a directory; point --skill-cache-dir at a directory*"]
    )
    assert "nothing is recorded" not in result.stdout.str()


def test_an_unreadable_entry_is_one_error_for_the_runner(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    request = Request("anthropic", "claude-haiku-4-5", "hi")
    cache.put(request, Response("hello"), "f::c")
    cache.close()
    set_rows(tmp_path, [request.key], value='{"label": 1}')
    with pytest.raises(UnreadableEntryError, match=f"cache entry {request.key[:12]}"):
        ResponseCache(tmp_path, read_only=True).get(request)


# --- kill -9 ------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_answers_a_killed_run_committed_are_replayed_and_not_called_again(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    write_skill(pytester.path, cases_yaml=TWELVE_CASES)
    cache = tmp_path / "cache"
    responder = HoldAfter(8)
    with LoopbackServer(responder=responder) as server:
        command, env = run_killed_mid_run(server, responder, pytester.path, cache)
        assert (cache / "cache.db-wal").stat().st_size > 0, "the answers sit in the log"
        recorded = committed_rows(cache)
        assert recorded == 8
        before = _digest(cache / "cache.db")

        report = tmp_path / "replay.json"
        replay = subprocess.run(
            [*command[:-1], "--skill-cache=replay", f"--skill-report={report}", command[-1]],
            env={**env, "CI": "true"},
            capture_output=True,
            text=True,
        )
        assert "INTERNALERROR" not in replay.stdout, replay.stdout[-3000:]
        results = json.loads(report.read_text())["results"]
        assert sum(result["cached"] for result in results) == recorded
        assert _digest(cache / "cache.db") == before, "a replay wrote to cache.db"

        calls_before = len(server.calls)
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stdout[-3000:]
        assert len(server.calls) - calls_before == 24 - recorded
    # A run that wrote folds the log into cache.db: the file alone is the whole cache.
    assert not (cache / "cache.db-wal").exists()
    assert len(ResponseCache(cache, read_only=True).keys()) == 24
