"""Untrusted text on its way out: lone surrogates in files, escape sequences on the
terminal, and report writers that fail without taking the others down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import HAIKU, SKILL_MD
from tests.conftest import output as everything
from tests.loopback import LoopbackServer

HALF_EMOJI = "\ud83d"  # a lone UTF-16 surrogate, as a JSON "\ud83d" escape gives it


def write_meta(root: Path, tests: list[dict[str, object]]) -> None:
    directory = root / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    # json.dumps writes the surrogate as the escape "\ud83d", as a hostile file would.
    (directory / "skill_meta.json").write_text(json.dumps({"tests": tests}))


def test_text_helpers() -> None:
    from pytest_skills.report.text import printable, without_surrogates

    assert without_surrogates(f"a{HALF_EMOJI}b") == "a\ufffdb"
    assert without_surrogates("a\U0001f600b") == "a\U0001f600b"  # a whole emoji stays
    assert printable("\x1b[2J\x1b[32m== 20 passed ==\x1b[0m") == "== 20 passed =="
    assert printable("title\x1b]0;pwned\x07 bell\x07 nul\x00") == "title bell\\x07 nul\\x00"
    assert printable("lines\n\tkept") == "lines\n\tkept"


def test_lone_surrogates_in_input_and_answer_do_not_break_the_reports(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    provider_env.responder = lambda call: f"half an emoji: {HALF_EMOJI}"
    write_meta(
        pytester.path,
        [
            {
                # (In an id, pytest itself cannot put it into PYTEST_CURRENT_TEST.)
                "id": "case",
                "input": f"say {HALF_EMOJI}",
                "expected": {"contains": "emoji"},
            }
        ],
    )
    html, ws, report = tmp_path / "r.html", tmp_path / "ws", tmp_path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off",
        f"--skill-html={html}", f"--skill-workspace={ws}", f"--skill-report={report}",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    shown = everything(result)
    assert "Traceback" not in shown and "cannot write" not in shown
    page = html.read_text(encoding="utf-8")
    assert 'half an <mark class="mark-pass">emoji</mark>: \ufffd' in page
    answers = [p.read_text(encoding="utf-8") for p in ws.rglob("answer.md")]
    assert "half an emoji: \ufffd" in answers
    assert json.loads(report.read_text())["results"]


def test_a_failing_report_writer_says_so_and_the_others_still_write(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    write_meta(pytester.path, [{"id": "a", "input": "hi", "expected": {"contains": "hi"}}])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ws, report = tmp_path / "ws", tmp_path / "r.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off",
        f"--skill-html={blocker / 'r.html'}", f"--skill-workspace={ws}",
        f"--skill-report={report}",
    )  # fmt: skip
    lines = [line for line in result.outlines if "cannot write" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("skills: cannot write the report: --skill-html: ")
    assert lines[0].endswith("; choose a writable path")
    assert report.is_file() and (ws / "anthropic-claude-haiku-4-5" / "benchmark.json").is_file()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "Traceback" not in everything(result)


def test_escape_sequences_from_answers_and_providers_never_reach_the_terminal(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    fake = "\x1b[2J\x1b[H\x1b[32m== 20 passed ==\x1b[0m"
    provider_env.responder = lambda call: f"answer {fake}"
    provider_env.fail_next(401, times=2, message=f"denied {fake}")
    write_meta(
        pytester.path,
        [
            {"id": "a", "input": "hi", "expected": {"equals": "nothing"}},
            {"id": "b", "input": "ho", "expected": {"equals": "nothing"}},
        ],
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off", "-rA",
        "--skill-retries=0",
    )  # fmt: skip
    shown = everything(result)
    assert "\x1b" not in shown
    assert "== 20 passed ==" in shown  # the text is kept, without its escapes


def test_case_ids_with_escapes_and_half_emoji_become_escaped_node_ids(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    red, half, broken = "x\x1b[31mred", f"half{HALF_EMOJI}", "two\nlines"
    write_meta(
        pytester.path,
        [
            {"id": name, "input": "hi", "expected": {"contains": "echo"}}
            for name in (red, half, broken)
        ],
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--skill-model", HAIKU, "--skill-cache=off", "-v",
        f"--skill-report={pytester.path / 'report.json'}",
    )  # fmt: skip
    shown = everything(result)
    assert "\x1b" not in shown and HALF_EMOJI not in shown
    result.assert_outcomes(passed=3)
    for escaped in ("x\\x1b[31mred[", "half\\ud83d[", "two\\nlines["):
        assert f"::{escaped}{HAIKU}] PASSED" in shown, escaped
    # The report keeps each id as the file wrote it (JSON escapes it).
    report = json.loads((pytester.path / "report.json").read_text())
    assert {r["case"] for r in report["results"]} == {red, half, broken}
