"""``--skill-init`` writes a starter that collects and runs; a spaced path option that
moved pytest's ini file is said, with the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HAIKU, SKILL_MD
from tests.loopback import LoopbackServer


def _skill(root: Path, name: str = "release-codes") -> Path:
    directory = root / "skills" / name
    directory.mkdir(parents=True)
    (directory / "SKILL.md").write_text(SKILL_MD.format(name=name, marker="AUR-7"))
    return directory


def test_init_writes_a_starter_that_collects_and_runs(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    skill = _skill(pytester.path)
    result = pytester.runpytest("--skill-init=skills/release-codes")
    assert result.ret == 0
    starter = skill / "release-codes.skill.yaml"
    result.stdout.fnmatch_lines([f"skills: wrote {starter} (starter cases for release-codes*"])
    text = starter.read_text()
    for kind in ("contains:", "not_contains:", "regex:", "any:", "json:", "judge:", "xfail:"):
        assert kind in text, kind
    assert text.count("\n  # ") >= 7  # every case says what its check does
    # The starter is a valid test file: every case collects and runs, none errors.
    ran = pytester.runpytest("-p", "no:cacheprovider", "--skill-model", HAIKU, "skills")
    outcomes = ran.parseoutcomes()
    assert "errors" not in outcomes and "error" not in outcomes, ran.stdout.str()
    assert outcomes.get("failed", 0) + outcomes.get("passed", 0) == 5
    assert outcomes.get("skipped") == 1  # the judge case, without a judge model
    assert outcomes.get("xfailed", 0) + outcomes.get("xpassed", 0) == 1


def test_init_without_a_dir_uses_the_current_one_and_never_overwrites(
    pytester: pytest.Pytester,
) -> None:
    skill = _skill(pytester.path, "kernel-builder")
    os.chdir(skill)
    first = pytester.runpytest("--skill-init")
    assert first.ret == 0
    starter = skill / "kernel-builder.skill.yaml"
    starter.write_text("cases: []  # my edits\n")
    again = pytester.runpytest("--skill-init")
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    again.stderr.fnmatch_lines([f"pytest-skills: {starter} exists: not overwritten*"])
    assert starter.read_text() == "cases: []  # my edits\n"


def test_init_without_a_skill_md_says_what_to_give(pytester: pytest.Pytester) -> None:
    (pytester.path / "empty").mkdir()
    result = pytester.runpytest("--skill-init=empty")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["pytest-skills: no SKILL.md in *empty: give the directory*"])
    assert "Traceback" not in result.stderr.str()
    assert list((pytester.path / "empty").iterdir()) == []


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path: Path, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose ini file names the model, as a user's would."""
    root = tmp_path / "project"
    root.mkdir()
    _skill(root)
    (root / "skills" / "release-codes" / "cases.skill.yaml").write_text(
        "cases:\n  - input: Name the release\n    expect: {contains: release}\n"
    )
    (root / "pytest.ini").write_text(f"[pytest]\nskill_models = {HAIKU}\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key-123")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback.url)
    return root


def test_a_spaced_path_value_that_moved_the_ini_file_is_said_with_the_fix(
    project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "elsewhere" / "report.html"
    first = _run(project, "--skill-html", str(report))
    assert first.returncode == 0, first.stdout[-2000:]
    assert "1 passed" in first.stdout and report.exists()
    assert "pytest-dev/pytest#1435" not in first.stdout  # the file did not exist yet
    # The second run: pytest now takes the existing report for a test path, finds no
    # pytest.ini, no model: it tests nothing. It must say so, and how to write it.
    second = _run(project, "--skill-html", str(report))
    assert "ini file none" in second.stdout, second.stdout[-3000:]
    assert "pytest-dev/pytest#1435" in second.stdout
    assert f"Write --skill-html={report} (one argument)" in second.stdout.replace("\n", " ")
    # The = form is one argument: the ini file is found and nothing is said.
    fixed = _run(project, f"--skill-html={report}")
    assert "1 passed" in fixed.stdout and "pytest-dev/pytest#1435" not in fixed.stdout


def test_a_spaced_path_value_inside_the_project_changes_nothing_and_is_not_flagged(
    project: Path,
) -> None:
    (project / "out").mkdir()
    (project / "out" / "report.json").write_text("{}")
    result = _run(project, "--skill-report", "out/report.json")
    assert "1 passed" in result.stdout, result.stdout[-2000:]
    assert "pytest-dev/pytest#1435" not in result.stdout
