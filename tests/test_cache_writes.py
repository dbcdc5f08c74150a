"""What is recorded replays, and a cache that cannot take a write still serves its answers.

The writer and the reader share one entry format: an odd value a provider sends is
normalised before it is stored, or the answer is not stored, with the reason. Read-only
directories and full disks are real: a read-only bind mount and a small tmpfs, each in
a mount namespace of its own (``unshare``), around a run of the plugin.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HAIKU, plugin_subprocess, write_skill
from tests.loopback import Call, LoopbackServer, echo

GPT = "openai:gpt-4.1-mini"
REFUSAL = "I'm sorry, I can't help with that."


class OddServer(LoopbackServer):
    """The loopback provider, with each OpenAI body changed by ``change`` before it is sent."""

    def __init__(self, change: Callable[[dict[str, Any]], None], **kwargs: Any):
        self.change = change
        super().__init__(**kwargs)

    def _openai_reply(self, call: Call, text: str, model: Any) -> Any:
        reply = super()._openai_reply(call, text, model)
        self.change(reply.payload)
        return reply


def _usage(name: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload["usage"][name] = value

    return change


def _model_id(payload: dict[str, Any]) -> None:
    payload["model"] = 123


def _refusal(payload: dict[str, Any]) -> None:
    payload["choices"][0]["message"].update(content=None, refusal=REFUSAL)


ODD_BODIES = {
    "negative-usage": _usage("completion_tokens", -7),
    "fractional-usage": _usage("completion_tokens", 2.5),
    "nan-usage": _usage("completion_tokens", float("nan")),
    "model-id-not-a-string": _model_id,
    "refusal": _refusal,
}


def report_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", list(ODD_BODIES))
def test_what_was_recorded_live_replays_the_same(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    args = ("--skill-model", GPT, f"--skill-cache-dir={cache}", "-p", "no:cacheprovider")
    for variable in ("CI", "GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(variable, raising=False)
    with OddServer(ODD_BODIES[name]) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key-456")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
        live = pytester.runpytest(*args, f"--skill-report={tmp_path / 'live.json'}")
    outcomes = live.parseoutcomes()
    assert "not cached" not in live.stdout.str()

    monkeypatch.delenv("OPENAI_API_KEY")
    replay = pytester.runpytest(
        *args, "--skill-cache=replay", f"--skill-report={tmp_path / 'replay.json'}"
    )
    assert replay.parseoutcomes() == outcomes
    assert "unreadable" not in replay.stdout.str()
    recorded, replayed = report_of(tmp_path / "live.json"), report_of(tmp_path / "replay.json")
    assert all(result["cached"] for result in replayed["results"])
    assert replayed["models"] == recorded["models"], "the replay's figures differ"
    if name == "refusal":
        # What the model said is its answer: graded, and kept.
        live.assert_outcomes(failed=2)
        assert {result["output"] for result in replayed["results"]} == {REFUSAL}


def test_an_entry_over_the_limit_is_refused_when_written_not_when_replayed(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from pytest_skills.execution import entries  # new with the limit shared by both sides

    monkeypatch.setattr(entries, "MAX_ENTRY_BYTES", 2000)  # both sides read this one limit
    long_input = "word " * 400
    write_skill(
        pytester.path,
        cases_yaml=f"cases:\n  - {{id: short, input: hi, expect: {{contains: echo}}}}\n"
        f"  - {{id: long, input: '{long_input}', expect: {{contains: echo}}}}\n",
    )
    cache = tmp_path / "cache"
    args = ("--skill-model", HAIKU, f"--skill-cache-dir={cache}", "-p", "no:cacheprovider")
    live = pytester.runpytest(*args)
    live.assert_outcomes(passed=2, warnings=2)
    live.stdout.fnmatch_lines(
        ["*not cached: the entry is *,* bytes; the cache holds entries of up to 2,000 bytes*"]
    )
    replay = pytester.runpytest(*args, "--skill-cache=replay")
    replay.assert_outcomes(passed=1, failed=1)
    replay.stdout.fnmatch_lines(["*skill case long*", "*: not in the cache (nothing is recorded*"])
    assert "unreadable" not in replay.stdout.str()


# --- read-only directories and full disks, in a mount namespace ----------------------


def _namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True
    )
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces(), reason="needs unshare -rm (user and mount namespaces) to mount"
)


def run_mounted(
    mount: str, server: LoopbackServer, project: Path, cache: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """Run the plugin on ``project`` after ``mount`` (shell), in a namespace of its own."""
    command, env = plugin_subprocess(server, project, f"--skill-cache-dir={cache}", *options)
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'{mount} && exec "$@"', "sh", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def read_only(cache: Path) -> str:
    return f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache}"


def record(server: LoopbackServer, project: Path, cache: Path) -> None:
    command, env = plugin_subprocess(server, project, f"--skill-cache-dir={cache}")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]


@needs_namespaces
def test_auto_replays_a_read_only_cache_and_says_once_it_cannot_record(tmp_path: Path) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    write_skill(project)
    with LoopbackServer() as server:
        record(server, project, cache)
        calls = len(server.calls)
        complete = run_mounted(read_only(cache), server, project, cache)
        assert complete.returncode == 0, complete.stdout[-3000:]
        assert "2 passed" in complete.stdout and "warning" not in complete.stdout
        assert len(server.calls) == calls

        cases = project / "demo" / "demo.skill.yaml"
        cases.write_text(
            cases.read_text() + "  - {id: fresh, input: New, expect: {contains: echo}}\n"
        )
        missing = run_mounted(read_only(cache), server, project, cache)
    assert missing.returncode == 0, missing.stdout[-3000:]
    assert "3 passed, 1 warning" in missing.stdout
    assert missing.stdout.count("is read-only here") == 2  # the warning, the summary
    assert f"skills: 2 answer(s) not recorded: the response cache at {cache} is read-only" in (
        missing.stdout
    )


@needs_namespaces
def test_a_committed_log_without_its_index_is_replayed_from_a_read_only_directory(
    tmp_path: Path,
) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    write_skill(project)
    with LoopbackServer() as server:
        record(server, project, cache)
        # Every answer moved into the write-ahead log, then the files copied as git would
        # commit them: cache.db and cache.db-wal, no -shm.
        db = sqlite3.connect(cache / "cache.db", isolation_level=None)
        rows = db.execute("SELECT * FROM Cache").fetchall()
        db.execute("DELETE FROM Cache")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.executemany(f"INSERT INTO Cache VALUES ({', '.join('?' * len(rows[0]))})", rows)
        committed = tmp_path / "committed"
        committed.mkdir()
        for name in ("cache.db", "cache.db-wal"):
            shutil.copyfile(cache / name, committed / name)
        db.close()
        result = run_mounted(
            read_only(committed), server, project, committed, "--skill-cache=replay"
        )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout
    assert sorted(p.name for p in committed.iterdir()) == ["cache.db", "cache.db-wal"]


@needs_namespaces
def test_a_full_disk_is_one_warning_with_a_count(tmp_path: Path) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    cache.mkdir()
    write_skill(
        project,
        cases_yaml="cases:\n"
        + "".join(
            f"  - {{id: c{i}, input: q{i}, expect: {{contains: echo}}}}\n" for i in range(12)
        ),
    )

    def long_answer(call: Call) -> str:
        return echo(call) + " " + "x" * 40_000  # stored in a value file of its own

    with LoopbackServer(responder=long_answer) as server:
        result = run_mounted(f"mount -t tmpfs -o size=300k tmpfs {cache}", server, project, cache)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "12 passed, 1 warning" in result.stdout, result.stdout[-3000:]
    assert result.stdout.count(" is full (") == 2  # the warning, the summary
    unrecorded = re.search(
        r"skills: (\d+) answer\(s\) not recorded: the disk holding", result.stdout
    )
    assert unrecorded is not None and 0 < int(unrecorded[1]) < 24


def test_values_a_plugin_backend_returns_are_stored_as_a_replay_reads_them(
    tmp_path: Path,
) -> None:
    from pytest_skills.execution.cache import ResponseCache
    from pytest_skills.models import Request, Response, Usage

    odd = Response(
        "answer \ud83d",
        usage=Usage(input_tokens=5.0, output_tokens=-3, reasoning_tokens=10**400),  # type: ignore[arg-type]
        latency_s=float("inf"),
        reported_model=123,  # type: ignore[arg-type]
        reasoning=["thought"],  # type: ignore[arg-type]
        extra={"adapted": ["a", "b"], "own": {1, 2}},
    )
    request = Request("anthropic", "claude-haiku-4-5", "hi")
    cache = ResponseCache(tmp_path)
    cache.put(request, odd, "f::c")
    cache.close()
    replayed = ResponseCache(tmp_path, read_only=True).get(request)
    assert replayed is not None
    assert replayed.text == "answer \ufffd"
    assert replayed.usage == Usage(input_tokens=5, output_tokens=0, reasoning_tokens=0)
    assert type(replayed.usage.input_tokens) is int
    assert replayed.latency_s == 0.0
    assert replayed.reported_model == "123"
    assert replayed.reasoning == "['thought']"
    assert replayed.extra == {"adapted": "['a', 'b']", "own": "{1, 2}"}
