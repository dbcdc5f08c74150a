"""Recordings a reviewer can read: --skill-cache-dump, its textconv module, and git diff."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded before any in-process run (pytester drops modules first imported during one).
import pytest_skills.cache_commands
import pytest_skills.execution.dump  # noqa: F401
from pytest_skills.execution.cache import ResponseCache
from pytest_skills.execution.dump import dump
from pytest_skills.execution.entries import decode, encode
from pytest_skills.models import Request, Response, Usage
from pytest_skills.models.requests import ToolCall
from tests.conftest import HAIKU, output, write_skill
from tests.loopback import Call, LoopbackServer, echo

MULTI_LINE = "First line of the answer.\n\n  indented, after a blank line\nlast line"
#: (skill label, prompt, arm, trial, answer): recorded in two different orders below.
ENTRIES = [
    ("b/b.skill.yaml::one", "question b1", "skill", 0, "b one"),
    ("a/a.skill.yaml::two", "question a2", "skill", 0, MULTI_LINE),
    ("a/a.skill.yaml::one", "question a1", "skill", 1, "a one, second trial"),
    ("a/a.skill.yaml::one", "question a1", "baseline", 0, "a one without the skill"),
    ("a/a.skill.yaml::one", "question a1", "skill", 0, "a one"),
]


def module_dump(path: Path) -> subprocess.CompletedProcess[str]:
    """The textconv command, as git runs it: a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_skills.execution.dump", str(path)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def record(directory: Path, entries: list[tuple[str, str, str, int, str]]) -> None:
    cache = ResponseCache(directory, secrets={})
    for label, prompt, arm, trial, answer in entries:
        system = "# Skill: s" if arm == "skill" else None
        request = Request(
            provider="anthropic",
            model="claude-haiku-4-5",
            prompt=prompt,
            system=system,
            trial=trial,
        )
        response = Response(
            answer, Usage(11, 7), latency_s=0.5, stop_reason="end_turn", recorded_at="T"
        )
        cache.put(request, response, label, arm=arm)
    cache.close()


def test_entries_keep_their_arm_and_old_entries_still_read(tmp_path: Path) -> None:
    response = Response("answer", Usage(1, 2))
    old = encode("f::c", {"trial": 0}, response)  # as recorded before arms were kept
    assert '"arm"' not in old and decode("k", old).arm == ""
    new = encode("f::c", {"trial": 0}, response, "baseline")
    assert json.loads(new)["arm"] == "baseline" and decode("k", new).arm == "baseline"
    with pytest.raises(ValueError, match="its 'arm' is not a string"):
        decode("k", json.dumps({**json.loads(new), "arm": ["skill"]}))
    # The arm is not part of the key: any arm asking the same request replays the answer.
    cache = ResponseCache(tmp_path, secrets={})
    request = Request(provider="anthropic", model="m", prompt="p")
    cache.put(request, response, "f::c", arm="aa")
    assert cache.keys() == {request.key}
    replayed = cache.get(request)
    assert replayed is not None and replayed.text == "answer"
    cache.close()


def test_the_dump_is_sorted_stable_and_shows_answers_as_text(tmp_path: Path) -> None:
    record(tmp_path / "forward", ENTRIES)
    record(tmp_path / "backward", ENTRIES[::-1])
    forward = dump(tmp_path / "forward", secrets={})
    assert forward == dump(tmp_path / "forward", secrets={}), "two dumps of one cache differ"
    assert forward == dump(tmp_path / "backward", secrets={}), "the dump follows insertion order"

    order = [
        (line.removeprefix("=== "), following.split(" · ")[1:])
        for line, following in itertools.pairwise(forward)
        if line.startswith("=== ")
    ]
    assert order == [
        ("a/a.skill.yaml :: one", ["arm: baseline", "trial: 0"]),
        ("a/a.skill.yaml :: one", ["arm: skill", "trial: 0"]),
        ("a/a.skill.yaml :: one", ["arm: skill", "trial: 1"]),
        ("a/a.skill.yaml :: two", ["arm: skill", "trial: 0"]),
        ("b/b.skill.yaml :: one", ["arm: skill", "trial: 0"]),
    ]
    assert forward[0] == "# pytest-skills response cache: 5 entries"
    text = "\n".join(forward)
    # Multi-line answers stay multi-line, never JSON-escaped; a blank line stays visible.
    assert (
        "answer:\n  | First line of the answer.\n  |\n  |   indented, after a blank line\n"
        "  | last line\nrecorded: T · latency 0.50s"
    ) in text
    assert "\\n" not in text
    assert f"model: {HAIKU} · arm: skill · trial: 0" in forward
    assert "usage: input 11 · output 7 · cache read 0 · cache write 0 · reasoning 0" in forward


def test_pytest_and_the_textconv_module_print_the_same(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    record(cache, ENTRIES)
    named = pytester.runpytest("-p", "no:cacheprovider", f"--skill-cache-dump={cache}")
    assert named.ret == 0, output(named)
    # Without DIR: the run's --skill-cache-dir.
    default = pytester.runpytest(
        "-p", "no:cacheprovider", f"--skill-cache-dir={cache}", "--skill-cache-dump"
    )
    assert default.ret == 0, output(default)
    module = module_dump(cache)
    assert module.returncode == 0, module.stderr
    assert named.outlines == default.outlines == module.stdout.splitlines()
    assert "a one without the skill" in module.stdout


def test_a_bare_copy_of_cache_db_dumps_as_git_hands_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    record(cache, ENTRIES)
    blob = tmp_path / "XyZ_cache.db"  # git's temporary file is named anything
    shutil.copyfile(cache / "cache.db", blob)
    assert module_dump(blob).stdout.splitlines() == dump(cache, secrets={})
    # The cache's own cache.db: its directory, value files and all.
    assert dump(cache / "cache.db", secrets={}) == dump(cache, secrets={})

    # An answer large enough for diskcache to keep in a value file beside cache.db.
    large = "long answer " * 5000
    record(cache, [("c/c.skill.yaml::big", "question c", "skill", 0, large)])
    assert list(cache.rglob("*.val")), "the large answer was expected in a value file"
    shutil.copyfile(cache / "cache.db", blob)
    bare = module_dump(blob)
    assert bare.returncode == 0
    assert "6 entries" not in bare.stdout
    assert (
        "# pytest-skills response cache: 5 entries, 1 in value files this copy lacks" in bare.stdout
    )
    assert "=== entry " in bare.stdout and "dump the cache directory to read it" in bare.stdout
    assert large.strip() in "\n".join(dump(cache, secrets={}))


def test_what_is_not_a_cache_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    record(cache, ENTRIES[:1])
    db = sqlite3.connect(cache / "cache.db")
    db.execute("CREATE VIEW answers AS SELECT value FROM Cache")
    db.close()
    for path, said in [
        (cache, "is not a response cache pytest-skills wrote (its cache.db holds a view"),
        (tmp_path / "absent", "No such file or directory"),
        (tmp_path, "holds no cache.db: it is not a response cache"),
    ]:
        result = module_dump(path)
        assert result.returncode == 2, path
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_unreadable_entries_escapes_and_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    secret = "sk-dump-secret-0123456789"
    record(
        cache,
        [
            ("s/s.skill.yaml::esc", "q1", "skill", 0, "red \x1b[31mtext\u202e"),
            ("s/s.skill.yaml::key", "q2", "skill", 0, f"the key is {secret}"),
            ("s/s.skill.yaml::bad", "q3", "skill", 0, "spoilt"),
        ],
    )
    db = sqlite3.connect(cache / "cache.db")
    with db:
        db.execute("UPDATE Cache SET value = 'not json' WHERE value LIKE '%spoilt%'")
    db.close()
    monkeypatch.setenv("DUMP_TEST_TOKEN", secret)
    result = module_dump(cache)
    assert result.returncode == 0, result.stderr
    assert "  | red \\x1b[31mtext\\u202e" in result.stdout.splitlines()
    assert "\x1b" not in result.stdout
    assert secret not in result.stdout and "[redacted $DUMP_TEST_TOKEN]" in result.stdout
    assert result.stdout.startswith("# pytest-skills response cache: 2 entries, 1 unreadable\n")
    assert "\nrefused: it is not JSON\n" in result.stdout


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo.parent)},
    ).stdout


@pytest.mark.usefixtures("provider_env")
def test_git_diff_with_the_textconv_setup_shows_the_changed_answer(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    repo = pytester.path
    write_skill(repo)
    git(repo, "init", "-q")
    (repo / ".gitattributes").write_text(".skill-cache/cache.db diff=skill-cache\n")
    git(
        repo,
        "config",
        "diff.skill-cache.textconv",
        f"{sys.executable} -m pytest_skills.execution.dump",
    )
    pytester.runpytest("--skill-model", HAIKU, "-p", "no:cacheprovider").assert_outcomes(passed=2)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "record")

    def changed(call: Call) -> str:
        if "Repeat" in call.prompt and call.system:
            return "echo, but worded\nover two lines"
        return echo(call)

    provider_env.responder = changed
    again = pytester.runpytest(
        "--skill-model", HAIKU, "-p", "no:cacheprovider", "--skill-cache=refresh"
    )
    again.assert_outcomes(passed=2)
    diff = git(repo, "diff", "--", ".skill-cache/cache.db").splitlines()
    removed = [line for line in diff if line.startswith("-  |")]
    added = [line for line in diff if line.startswith("+  |")]
    assert removed == ["-  | echo: Repeat after me | skill: # Skill: demo"], diff
    assert added == ["+  | echo, but worded", "+  | over two lines"], diff
    # Without the textconv setup git calls it a binary change: this is what the setup adds.
    plain = git(repo, "-c", "diff.skill-cache.textconv=", "diff", "--no-textconv")
    assert "Binary files" in plain


def test_reasoning_tool_calls_and_extra_facts_are_shown(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, secrets={})
    response = Response(
        "done",
        Usage(5, 9, reasoning_tokens=4),
        reasoning="first I think\nthen I answer",
        tool_calls=(ToolCall("call_1", "read_skill", '{"name": "demo"}'),),
        extra={"gguf_sha256": "ab" * 32},
    )
    cache.put(
        Request(provider="gguf", model="m.gguf", prompt="p"), response, "f::c", arm="on-demand"
    )
    cache.close()
    lines = dump(tmp_path, secrets={})
    at = lines.index("reasoning:")
    assert lines[at : at + 5] == [
        "reasoning:",
        "  | first I think",
        "  | then I answer",
        "tool calls:",
        '  | read_skill {"name": "demo"}  (id call_1)',
    ]
    assert f"extra: gguf_sha256={'ab' * 32}" in lines
    assert "model: gguf:m.gguf · arm: on-demand · trial: 0" in lines
    assert "usage: input 5 · output 9 · cache read 0 · cache write 0 · reasoning 4" in lines
