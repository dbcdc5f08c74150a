"""Shards that merge: --skill-cache-merge combines caches that CI jobs recorded in parts."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

# Loaded before any in-process run (pytester drops modules first imported during one).
import pytest_skills.cache_commands
import pytest_skills.execution.dump
import pytest_skills.execution.merge  # noqa: F401
from pytest_skills.execution.cache import ResponseCache
from pytest_skills.execution.dump import dump
from pytest_skills.models import Request, Response, Usage
from tests.conftest import HAIKU, output, write_skill
from tests.loopback import Call, LoopbackServer, echo

pytestmark = pytest.mark.usefixtures("provider_env")


def run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, f"--skill-cache-dir={cache}", "-p", "no:cacheprovider", *args
    )


def merge(pytester: pytest.Pytester, into: Path, *sources: Path) -> pytest.RunResult:
    return pytester.runpytest(
        f"--skill-cache-dir={into}", "--skill-cache-merge", *map(str, sources)
    )


def merge_here(pytester: pytest.Pytester, *sources: str) -> pytest.RunResult:
    """A merge into the project's default cache directory."""
    return pytester.runpytest("-p", "no:cacheprovider", "--skill-cache-merge", *sources)


def failed_merge(pytester: pytest.Pytester, into: Path, *sources: Path) -> pytest.RunResult:
    """A merge expected to fail, in a process of its own: pytester's in-process runs
    cannot report an exit before the session is configured."""
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--skill-cache-dir={into}",
        "--skill-cache-merge",
        *map(str, sources),
    )


def two_skills(pytester: pytest.Pytester) -> None:
    """Two skills whose cases ask different questions: no call of one is the other's."""
    for name in ("alpha", "beta"):
        write_skill(
            pytester.path,
            name,
            cases_yaml=f"""
            cases:
              - {{id: mentions-skill, input: Tell me about {name}, expect: {{contains: "skill:"}}}}
              - {{id: echoes, input: Repeat {name}, expect: {{contains: echo}}}}
            """,
        )


def test_two_shards_merged_replay_the_whole_suite_and_call_nothing(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two_skills(pytester)
    shard_one, shard_two = tmp_path / "shard-1", tmp_path / "shard-2"
    # Each shard runs its part of the suite, as a CI matrix job would.
    run(pytester, shard_one, "alpha").assert_outcomes(passed=2)
    run(pytester, shard_two, "-k", "beta").assert_outcomes(passed=2)
    assert len(provider_env.calls) == 8

    # The destination does not exist yet: the merge creates it.
    merged_dir = tmp_path / "merged" / ".skill-cache"
    result = merge(pytester, merged_dir, shard_one, shard_two)
    assert result.ret == 0, output(result)
    result.stdout.fnmatch_lines(
        [
            f"skills: merged 4 new, 0 identical, 0 conflicting (kept this cache's), "
            f"0 refused from {shard_one}",
            f"skills: merged 4 new, 0 identical, 0 conflicting (kept this cache's), "
            f"0 refused from {shard_two}",
        ]
    )
    assert "passed" not in result.stdout.str() and "collected" not in result.stdout.str()
    # close() folded the write-ahead log: cache.db alone holds every answer.
    assert not (merged_dir / "cache.db-wal").exists()
    assert len(ResponseCache(merged_dir).keys()) == 8

    provider_env.stop()
    monkeypatch.setenv("CI", "true")
    # One shard's cache alone does not replay the suite: the merge is what makes it whole.
    run(pytester, shard_one).assert_outcomes(passed=2, failed=2)
    replay = run(pytester, merged_dir)
    replay.assert_outcomes(passed=4)
    assert len(provider_env.calls) == 8, "the merged replay called the provider"

    # Each entry remembers the arm that recorded it.
    text = "\n".join(dump(merged_dir))
    assert text.count("· arm: skill ·") == 4 and text.count("· arm: baseline ·") == 4


def test_identical_keys_are_kept_once_and_conflicts_keep_this_caches_answer(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path)
    ours, theirs, copy = tmp_path / "ours", tmp_path / "theirs", tmp_path / "copy"
    run(pytester, ours).assert_outcomes(passed=2)
    run(pytester, copy).assert_outcomes(passed=2)

    def other(call: Call) -> str:
        return "something else entirely" if "Repeat" in call.prompt else echo(call)

    provider_env.responder = other
    run(pytester, theirs).assert_outcomes(passed=1, failed=1)
    before = dump(ours)

    result = merge(pytester, ours, copy, theirs)
    assert result.ret == 0, output(result)
    # The copy's answers equal ours though each was recorded at another time.
    result.stdout.fnmatch_lines(
        [
            f"skills: merged 0 new, 4 identical, 0 conflicting (kept this cache's), "
            f"0 refused from {copy}",
            f"skills: merged 0 new, 2 identical, 2 conflicting (kept this cache's), "
            f"0 refused from {theirs}",
            "skills:   conflicting: demo/demo.skill.yaml::echoes · "
            f"{HAIKU} · arm baseline (entry *)",
            f"skills:   conflicting: demo/demo.skill.yaml::echoes · {HAIKU} · arm skill (entry *)",
        ]
    )
    assert dump(ours) == before, "the destination's answers must be kept"
    assert "something else entirely" in "\n".join(dump(theirs))


def _record(directory: Path, answers: dict[str, str], secrets: dict[str, str]) -> None:
    cache = ResponseCache(directory, secrets=secrets)
    for prompt, answer in answers.items():
        request = Request(provider="anthropic", model="claude-haiku-4-5", prompt=prompt)
        cache.put(request, Response(answer, Usage(3, 4)), f"s/s.skill.yaml::{prompt}", arm="skill")
    cache.close()


def test_unreadable_entries_and_secrets_are_refused_and_counted(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, into = tmp_path / "source", tmp_path / "into"
    secret = "sk-shard-secret-0123456789"
    # The shard's job had no such variable: the answer that repeats it was recorded there.
    _record(source, {"a": "fine", "b": f"leaks {secret}", "c": "to be spoilt"}, secrets={})
    spoilt = ResponseCache(source).keys()
    db = sqlite3.connect(source / "cache.db")
    with db:
        db.execute("UPDATE Cache SET value = '{\"label\": 3}' WHERE value LIKE '%spoilt%'")
    db.close()
    monkeypatch.setenv("MERGE_TEST_TOKEN", secret)

    result = merge(pytester, into, source)
    assert result.ret == 0, output(result)
    result.stdout.fnmatch_lines(
        [
            "skills: merged 1 new, 0 identical, 0 conflicting (kept this cache's), "
            f"2 refused from {source}",
        ]
    )
    # Listed by key: which of the two comes first depends on their keys alone.
    result.stdout.fnmatch_lines(
        ["skills:   refused: entry * it holds the value of $MERGE_TEST_TOKEN"]
    )
    result.stdout.fnmatch_lines(
        ["skills:   refused: entry * unreadable: its 'label' or 'fields' is missing*"]
    )
    assert secret not in output(result)
    stored = b"".join(p.read_bytes() for p in into.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert len(ResponseCache(into).keys()) == 1 and len(spoilt) == 3


def test_an_untrusted_source_is_refused_whole_and_nothing_is_merged(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    good, hostile, into = tmp_path / "good", tmp_path / "hostile", tmp_path / "into"
    _record(good, {"a": "one"}, secrets={})
    _record(hostile, {"b": "two"}, secrets={})
    db = sqlite3.connect(hostile / "cache.db")
    db.execute("CREATE TRIGGER swap AFTER INSERT ON Cache BEGIN UPDATE Cache SET value = 'x'; END")
    db.close()

    result = failed_merge(pytester, into, good, hostile)
    assert result.ret == 2
    result.stderr.fnmatch_lines(
        [
            f"pytest-skills: the cache at {hostile} is not one pytest-skills wrote (its cache.db "
            "holds a trigger 'swap' that diskcache never creates*nothing was merged*"
        ]
    )
    assert "Traceback" not in output(result)
    assert not into.exists(), "a refused merge must write nothing, not even the good source"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("absent", "*absent does not exist: nothing was merged*"),
        ("empty", "*empty holds no cache.db, so it is not a response cache*"),
    ],
)
def test_a_source_that_is_no_cache_is_a_clear_error(
    pytester: pytest.Pytester, tmp_path: Path, name: str, said: str
) -> None:
    (tmp_path / "empty").mkdir()
    source = tmp_path / name
    result = failed_merge(pytester, tmp_path / "into", source)
    assert result.ret == 2
    result.stderr.fnmatch_lines([f"pytest-skills: {said}"])
    assert len(result.errlines) == 1, output(result)


def test_a_destination_that_cannot_be_a_cache_is_a_clear_error(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    _record(source, {"a": "one"}, secrets={})
    (tmp_path / "file").write_text("not a directory")
    result = failed_merge(pytester, tmp_path / "file" / "cache", source)
    assert result.ret == 2
    result.stderr.fnmatch_lines(["pytest-skills: nothing was merged: *file is a file, not a dir*"])
    merging_itself = failed_merge(pytester, source, source)
    assert merging_itself.ret == 2
    merging_itself.stderr.fnmatch_lines(["*is this run's own cache directory*"])


def test_sources_that_move_pytests_rootdir_never_merge_into_the_wrong_cache(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
    theirs = tmp_path / "theirs"
    _record(theirs, {"a": "one"}, secrets={})
    # Outside the project: pytest finds its rootdir from the source's path, not here.
    outside = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--skill-cache-merge", theirs)
    assert outside.ret == 2
    project_cache = pytester.path.resolve() / ".skill-cache"
    outside.stderr.fnmatch_lines(
        [
            f"pytest-skills: pytest took the directories to merge for test paths*"
            f"--skill-cache-dir={project_cache} (or add --rootdir={pytester.path.resolve()})"
        ]
    )
    # Where it would have gone: the rootdir pytest chose, above both directories.
    assert not (tmp_path.parent / ".skill-cache").exists()
    assert not (theirs / ".skill-cache").exists()

    # Inside the project, pytest finds the project's configuration: the default cache.
    shutil.copytree(theirs, pytester.path / "shards" / "one")
    inside = merge_here(pytester, "shards/one")
    assert inside.ret == 0, output(inside)
    assert len(ResponseCache(project_cache).keys()) == 1
