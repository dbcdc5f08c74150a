"""A committed cache is data only: its schema is diskcache's own or the cache is not used.

Every tampering here is made with real SQLite on a cache the plugin recorded, as a pull
request changing ``cache.db`` would make it; the runs are the plugin's own, against
the loopback provider.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import diskcache
import pytest

from pytest_skills.execution.cache import ResponseCache, UnreadableEntryError
from pytest_skills.models import Request, Response
from tests.conftest import HAIKU, write_skill
from tests.conftest import output as everything
from tests.loopback import LoopbackServer

#: A case the loopback model fails: it never says the word. A crafted trigger that
#: adds the word to every recorded answer turns it into a pass.
CASES = """
    cases:
      - id: mentions-skill
        input: Tell me about the topic
        expect:
          contains: "skill: demo"
      - id: says-the-word
        input: Say nothing in particular
        expect:
          contains: PASSWORD-XYZ
"""

#: (statements, what the message names), each as a pull request could commit it.
TAMPERINGS = {
    "replaced-size-trigger": (
        [
            "DROP TRIGGER Settings_size_insert",
            # diskcache's CREATE TRIGGER IF NOT EXISTS keeps this one.
            "CREATE TRIGGER Settings_size_insert AFTER INSERT ON Cache FOR EACH ROW BEGIN"
            ' UPDATE Cache SET value = replace(value, \'"text": "\', \'"text": "PASSWORD-XYZ \')'
            " WHERE rowid = NEW.rowid; END",
        ],
        "a changed definition of diskcache's trigger 'Settings_size_insert'",
    ),
    "deleting-trigger": (
        [
            "CREATE TRIGGER tidy AFTER INSERT ON Cache FOR EACH ROW BEGIN"
            " DELETE FROM Cache WHERE rowid <> NEW.rowid; END"
        ],
        "a trigger 'tidy' that diskcache never creates",
    ),
    "view-named-cache": (
        [
            "ALTER TABLE Cache RENAME TO Stored",
            "CREATE VIEW Cache AS SELECT rowid, key, raw, store_time, expire_time, access_time,"
            " access_count, tag, size, mode, filename,"
            " replace(value, 'echo', 'PASSWORD-XYZ') AS value FROM Stored",
        ],
        "a view named 'Cache' where diskcache creates a table",
    ),
    "unknown-view": (
        ["CREATE VIEW answers AS SELECT key FROM Cache"],
        "a view 'answers' that diskcache never creates",
    ),
    "journal-off": (
        ["UPDATE Settings SET value = 'off' WHERE key = 'sqlite_journal_mode'"],
        "a Settings row sqlite_journal_mode = 'off' (pytest-skills writes 'wal')",
    ),
    "unknown-setting": (
        ["INSERT INTO Settings VALUES ('sqlite_writable_schema', 1)"],
        "a Settings row 'sqlite_writable_schema' that diskcache never writes",
    ),
    "extra-index": (
        ["CREATE INDEX Cache_value ON Cache (value)"],
        "an index 'Cache_value' that diskcache never creates",
    ),
}


def run(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, f"--skill-cache-dir={cache}", "-p", "no:cacheprovider", *args
    )


def tamper(cache: Path, statements: list[str]) -> None:
    db = sqlite3.connect(cache / "cache.db")
    try:
        with db:
            for statement in statements:
                db.execute(statement)
    finally:
        db.close()


def schema(path: Path) -> set[tuple[str, str, str, str | None]]:
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return set(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        db.close()


def diskcaches_own(tmp_path: Path) -> set[tuple[str, str, str, str | None]]:
    """The schema a fresh diskcache creates with pytest-skills' settings."""
    fresh = tmp_path / "fresh"
    diskcache.Cache(str(fresh), eviction_policy="none", size_limit=2**40).close()
    return schema(fresh / "cache.db")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_texts(cache: Path) -> list[str]:
    db = sqlite3.connect(f"{(cache / 'cache.db').as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        table = "Cache" if "Stored" not in names else "Stored"
        values = [row[0] for row in db.execute(f"SELECT value FROM {table}")]
    finally:
        db.close()
    return [json.loads(value)["response"]["text"] for value in values]


@pytest.fixture
def recorded(pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path) -> Path:
    """A cache holding the answers of the two cases (four entries): one passes, one fails."""
    write_skill(pytester.path, cases_yaml=CASES)
    cache = tmp_path / "cache"
    run(pytester, cache).assert_outcomes(passed=1, failed=1)
    return cache


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_cache_is_neither_read_nor_written(
    pytester: pytest.Pytester, recorded: Path, provider_env: LoopbackServer, name: str
) -> None:
    statements, named = TAMPERINGS[name]
    tamper(recorded, statements)
    before, objects = digest(recorded / "cache.db"), schema(recorded / "cache.db")
    # A new case makes auto mode record, which is when a trigger would fire.
    yaml_file = pytester.path / "demo" / "demo.skill.yaml"
    yaml_file.write_text(
        yaml_file.read_text() + "  - {id: fresh, input: A new question, expect: {contains: echo}}\n"
    )
    calls = len(provider_env.calls)
    result = run(pytester, recorded)
    result.assert_outcomes(failed=3)
    assert len(provider_env.calls) == calls, "a cache that is not ours was used to decide calls"
    text = everything(result)
    assert "INTERNALERROR" not in text and "Traceback" not in text
    first = f"the response cache at {recorded} is not one pytest-skills wrote"
    # Each item says it in one line; what is wrong and the way out are said once.
    line = f"{HAIKU}: {first}, so nothing was read from it or written to it (the skills summary"
    assert text.count(line) == 3, text
    assert text.count(named) == 1, text
    assert text.count("run with --skill-cache=refresh to rebuild it") == 1
    result.stdout.fnmatch_lines([f"  {HAIKU}: 6 call(s) not made: the response cache at *"])
    assert digest(recorded / "cache.db") == before, "something was written into it"
    assert schema(recorded / "cache.db") == objects
    assert sorted(path.name for path in recorded.iterdir()) == ["cache.db"]

    replay = run(pytester, recorded, "--skill-cache=replay")
    replay.assert_outcomes(failed=3)
    assert first in replay.stdout.str()


@pytest.mark.parametrize("name", ["replaced-size-trigger", "view-named-cache", "journal-off"])
def test_refresh_rebuilds_a_tampered_cache_from_what_checks_out(
    pytester: pytest.Pytester,
    recorded: Path,
    provider_env: LoopbackServer,
    name: str,
    tmp_path: Path,
) -> None:
    statements, named = TAMPERINGS[name]
    tamper(recorded, statements)
    result = run(pytester, recorded, "--skill-cache=refresh")
    # The model still fails the case: the answers recorded are its own.
    result.assert_outcomes(passed=1, failed=1)
    kept = 0 if name == "view-named-cache" else 4  # a view's rows are no table's
    result.stdout.fnmatch_lines(
        [
            f"skills: the response cache at {recorded} was not one pytest-skills wrote "
            f"(its cache.db holds {named}*): rebuilt it from the {kept} entries that check out*"
        ]
    )
    assert schema(recorded / "cache.db") == diskcaches_own(tmp_path)
    texts = stored_texts(recorded)
    assert len(texts) == 4 and not any("PASSWORD-XYZ" in text for text in texts)
    run(pytester, recorded, "--skill-cache=replay").assert_outcomes(passed=1, failed=1)


def test_xdist_workers_that_find_a_tampered_cache_rebuild_it_once(
    pytester: pytest.Pytester, recorded: Path, tmp_path: Path
) -> None:
    statements, _ = TAMPERINGS["deleting-trigger"]
    tamper(recorded, statements)
    # Each worker records, so each finds the cache untrusted; one rebuilds, one waits.
    result = run(pytester, recorded, "--skill-cache=refresh", "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    assert schema(recorded / "cache.db") == diskcaches_own(tmp_path)
    assert len(stored_texts(recorded)) == 4
    assert not list(recorded.glob(".rebuild-*"))
    run(pytester, recorded, "--skill-cache=replay").assert_outcomes(passed=1, failed=1)


def test_prune_rebuilds_a_tampered_cache_too(
    pytester: pytest.Pytester, recorded: Path, tmp_path: Path
) -> None:
    statements, _ = TAMPERINGS["deleting-trigger"]
    tamper(recorded, statements)
    result = run(pytester, recorded, "--skill-cache=replay", "--skill-cache-prune")
    result.assert_outcomes(failed=2)  # the run itself never read it
    result.stdout.fnmatch_lines(["*rebuilt it from the 4 entries that check out (0 refused)*"])
    assert schema(recorded / "cache.db") == diskcaches_own(tmp_path)
    run(pytester, recorded, "--skill-cache=replay").assert_outcomes(passed=1, failed=1)


def test_a_cache_db_symlink_never_makes_a_database_elsewhere(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_skill(pytester.path)
    cache = tmp_path / "cache"
    cache.mkdir()
    elsewhere = tmp_path / "elsewhere.db"
    (cache / "cache.db").symlink_to(elsewhere)  # dangling: SQLite would create it
    result = run(pytester, cache)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*its cache.db is a symbolic link, not a file*"])
    assert not elsewhere.exists()
    assert provider_env.calls == []

    run(pytester, cache, "--skill-cache=refresh").assert_outcomes(passed=2)
    assert not elsewhere.exists()
    assert not (cache / "cache.db").is_symlink()
    run(pytester, cache, "--skill-cache=replay").assert_outcomes(passed=2)


def test_a_value_file_that_is_a_fifo_is_refused_at_once(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    db = sqlite3.connect(recorded / "cache.db")
    (key,) = db.execute(
        "SELECT key FROM Cache WHERE value LIKE '%echo: Tell me about the topic | skill:%'"
    ).fetchone()
    with db:
        db.execute(
            "UPDATE Cache SET mode = 3, filename = 'ab/cd/answer.val', value = NULL WHERE key = ?",
            (key,),
        )
    db.close()
    (recorded / "ab" / "cd").mkdir(parents=True)
    os.mkfifo(recorded / "ab" / "cd" / "answer.val")
    # In a process of its own: opening a FIFO the old way waits for a writer forever.
    result = pytester.runpytest_subprocess(
        "--skill-model",
        HAIKU,
        f"--skill-cache-dir={recorded}",
        "--skill-cache=replay",
        "-p",
        "no:cacheprovider",
        timeout=120,
    )
    result.assert_outcomes(passed=0, failed=2)
    result.stdout.fnmatch_lines(
        [f"*cache entry {key[:12]} in {recorded} is unreadable: its value file*not a regular file*"]
    )


def test_the_cache_only_reads_text_that_is_utf8(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    good, bad = (Request("anthropic", "claude-haiku-4-5", prompt) for prompt in ("a", "b"))
    cache.put(good, Response("fine"), "f::a")
    cache.put(bad, Response("odd"), "f::b")
    cache.close()
    db = sqlite3.connect(tmp_path / "cache.db")
    with db:  # bytes that are not UTF-8, stored as TEXT
        db.execute("UPDATE Cache SET value = CAST(x'ff22fe' AS TEXT) WHERE key = ?", (bad.key,))
    db.close()
    again = ResponseCache(tmp_path, read_only=True)
    assert [entry.key for entry in again.entries()] == [good.key]
    assert again.get(good) is not None
    with pytest.raises(UnreadableEntryError, match="is unreadable: it holds bytes, not text"):
        again.get(bad)
