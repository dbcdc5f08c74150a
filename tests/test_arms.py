"""Arms: the skill against its version at a git ref, a placebo, another directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anthropic  # noqa: F401  (imported once here, not inside every in-process run)
import pytest

from pytest_skills.arms import ArmError, count_tokens, parse_arms, placebo_body
from tests.conftest import HAIKU
from tests.loopback import Call, LoopbackServer

OLD_SKILL = """\
---
name: release
description: Release codes of the product.
---
The release code of Aurora is AUR-7. The release code of Borealis is BOR-3.
"""
#: The new version drops the fact the borealis case needs.
NEW_SKILL = """\
---
name: release
description: Release codes of the product.
---
The release code of Aurora is AUR-7.
"""
CASES = """\
cases:
  - {id: aurora, input: What is the release code of Aurora?, expect: {contains: AUR-7}}
  - {id: borealis, input: What is the release code of Borealis?, expect: {contains: BOR-3}}
"""


def knows(call: Call) -> str:
    """A model that answers with the codes its system prompt states, nothing else."""
    system = call.system or ""
    codes = [code for code in ("AUR-7", "BOR-3") if code in system]
    return "I know: " + (", ".join(codes) if codes else "nothing")


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """A git repository with two commits of the skill; the second drops a fact."""
    root = pytester.path
    skill = root / "release"
    skill.mkdir()
    (skill / "release.skill.yaml").write_text(CASES)
    (skill / "SKILL.md").write_text(OLD_SKILL)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "old")
    (skill / "SKILL.md").write_text(NEW_SKILL)
    git(root, "commit", "-qam", "new")
    return root


def _run(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--skill-model",
        HAIKU,
        f"--skill-cache-dir={tmp_path / 'cache'}",
        f"--skill-report={tmp_path / 'report.json'}",
        *args,
    )


def test_compare_finds_the_regressed_case_gates_and_replays(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider_env.responder = knows
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    first = _run(pytester, tmp_path, "--skill-compare", "HEAD~1", "--skill-fail-on-regression")
    # The new version fails borealis; the gate fails the session and names the case.
    first.assert_outcomes(passed=1, failed=1)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    first.stdout.fnmatch_lines(
        [
            "*skill vs ref:HEAD~1: 1/2 against 2/2, -50pp *",
            "*GATE FAILED: *1 case(s) regressed against ref:HEAD~1: *borealis*",
        ]
    )
    # 2 cases x (skill, ref, baseline): 6 calls, all live.
    assert len(provider_env.calls) == 6
    first.stdout.fnmatch_lines(["skills: 6 calls: 6 live (skill, ref:HEAD~1, baseline), *"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["version"] == 2
    (model,) = report["models"]
    assert model["arms"]["ref:HEAD~1"]["passed"] == 2 and model["arms"]["skill"]["passed"] == 1
    versus = {(c["a"], c["b"]): c for c in model["comparisons"]}
    compared = versus[("skill", "ref:HEAD~1")]
    assert compared["lift"] == -0.5 and compared["regressed"] == [
        "release/release.skill.yaml::borealis[anthropic:claude-haiku-4-5]"
    ]
    assert {r["arm"] for r in report["results"]} == {"skill", "ref:HEAD~1", "baseline"}
    assert "| skill vs ref:HEAD~1 | 2 | -50 pp |" in summary.read_text()

    # The same run again calls nothing: every arm replays.
    second = _run(pytester, tmp_path, "--skill-compare", "HEAD~1")
    second.assert_outcomes(passed=1, failed=1)
    assert len(provider_env.calls) == 6

    # An edit of the working-tree skill alone calls only the skill arm.
    (project / "release" / "SKILL.md").write_text(OLD_SKILL + "\nAnswer briefly.\n")
    third = _run(pytester, tmp_path, "--skill-compare", "HEAD~1")
    third.assert_outcomes(passed=2)
    assert len(provider_env.calls) == 8
    assert all("Answer briefly" in (c.system or "") for c in provider_env.calls[6:])
    third.stdout.fnmatch_lines(["skills: 6 calls: 2 live (skill), 4 from the cache (*), *"])


def test_a_new_skill_and_an_unknown_ref_skip_that_arm_with_one_line(
    pytester: pytest.Pytester, provider_env: LoopbackServer, project: Path, tmp_path: Path
) -> None:
    provider_env.responder = knows
    unknown = _run(pytester, tmp_path, "--skill-compare", "no-such-branch")
    unknown.stdout.fnmatch_lines(["skills: ref:no-such-branch: unknown git ref 'no-such-branch'*"])
    unknown.assert_outcomes(passed=1, failed=1)  # the skill arm still runs
    assert all(c.system is None or "AUR-7" in c.system for c in provider_env.calls)

    newer = project / "newer"
    newer.mkdir()
    (newer / "SKILL.md").write_text(OLD_SKILL.replace("name: release", "name: newer"))
    (newer / "newer.skill.yaml").write_text(CASES)
    result = _run(pytester, tmp_path, "--skill-compare", "HEAD", "-W", "always")
    result.stdout.fnmatch_lines(["*skill newer did not exist at HEAD (a new skill)*"])
    assert "Traceback" not in result.stdout.str()


def test_outside_a_git_repository_the_ref_arm_is_refused_once(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    provider_env.responder = knows
    skill = pytester.path / "release"
    skill.mkdir()
    (skill / "SKILL.md").write_text(OLD_SKILL)
    (skill / "release.skill.yaml").write_text(CASES)
    result = _run(pytester, tmp_path, "--skill-compare", "main")
    result.stdout.fnmatch_lines(["skills: ref:main: *not in a git repository*"])
    result.assert_outcomes(passed=2)


def test_the_placebo_has_the_skills_length_and_is_asked_with_the_same_heading(
    pytester: pytest.Pytester, provider_env: LoopbackServer, project: Path, tmp_path: Path
) -> None:
    provider_env.responder = knows
    result = _run(pytester, tmp_path, "--skill-arms", "skill,placebo,baseline")
    result.assert_outcomes(passed=1, failed=1)
    placebos = [c.system for c in provider_env.calls if c.system and "AUR-7" not in c.system]
    assert placebos and all(p.startswith("# Skill: release") for p in placebos)
    report = json.loads((tmp_path / "report.json").read_text())
    titles = {(c["a"], c["b"]) for c in report["models"][0]["comparisons"]}
    assert titles == {("skill", "baseline"), ("skill", "placebo"), ("placebo", "baseline")}


@pytest.mark.parametrize("tokens", [1, 7, 60, 431, 2500])
def test_the_placebo_is_within_five_percent_of_the_skills_token_count(tokens: int) -> None:
    body = placebo_body(tokens)
    assert abs(count_tokens(body) - tokens) <= max(1, tokens * 0.05)
    assert "AUR" not in body


def test_a_dir_arm_asks_with_the_candidate_rewrite(
    pytester: pytest.Pytester, provider_env: LoopbackServer, project: Path, tmp_path: Path
) -> None:
    provider_env.responder = knows
    candidate = project / "candidate"
    candidate.mkdir()
    (candidate / "SKILL.md").write_text(OLD_SKILL)
    result = _run(pytester, tmp_path, "--skill-arms", "skill,dir:candidate")
    result.stdout.fnmatch_lines(["*skill vs dir:candidate: 1/2 against 2/2*"])
    missing = _run(pytester, tmp_path, "--skill-arms", "skill,dir:nowhere")
    missing.stdout.fnmatch_lines(["skills: dir:nowhere: no SKILL.md in *nowhere*"])


def test_arm_names_are_strict() -> None:
    assert [a.name for a in parse_arms("skill, ref:main ,baseline,skill")] == [
        "skill",
        "ref:main",
        "baseline",
    ]
    with pytest.raises(ArmError, match=r"did you mean placebo\?"):
        parse_arms("skill,placeb")
    with pytest.raises(ArmError, match="unknown arm 'ref:'"):
        parse_arms("ref:")


def test_the_arms_figures_agree_in_every_output_and_under_xdist(
    pytester: pytest.Pytester,
    provider_env: LoopbackServer,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider_env.responder = knows
    figures = []
    for workers in ("0", "2"):
        out = tmp_path / f"n{workers}"
        summary = out / "summary.md"
        out.mkdir()
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "-n",
            workers,
            "--skill-model",
            HAIKU,
            "--skill-cache=off",
            "--skill-compare",
            "HEAD~1",
            f"--skill-report={out / 'report.json'}",
            f"--skill-html={out / 'report.html'}",
        )
        model = json.loads((out / "report.json").read_text())["models"][0]
        compared = next(c for c in model["comparisons"] if c["b"] == "ref:HEAD~1")
        points = f"{compared['lift'] * 100:+.0f}"
        line = f"skill vs ref:HEAD~1: {compared['a_passed']}/{compared['answers']} against "
        assert line + f"{compared['b_passed']}/{compared['answers']}, {points}pp" in (
            result.stdout.str().replace("\n    ", " ")
        )
        assert f"| skill vs ref:HEAD~1 | {compared['cases']} | {points} pp |" in summary.read_text()
        page = (out / "report.html").read_text()
        assert 'data-comparison="skill vs ref:HEAD~1"' in page and f"{points} pp" in page
        figures.append((model["arms"], model["comparisons"]))
    assert figures[0] == figures[1]


def test_the_workspace_names_the_compared_version_old_skill(
    pytester: pytest.Pytester, provider_env: LoopbackServer, project: Path, tmp_path: Path
) -> None:
    provider_env.responder = knows
    workspace = tmp_path / "workspace"
    _run(pytester, tmp_path, "--skill-compare", "HEAD~1", f"--skill-workspace={workspace}")
    (model_dir,) = workspace.iterdir()
    configurations = {p.name for p in model_dir.glob("eval-*/*") if p.is_dir()}
    assert configurations == {"with_skill", "without_skill", "old_skill"}
    benchmark = json.loads((model_dir / "benchmark.json").read_text())
    assert benchmark["run_summary"]["old_skill"]["pass_rate"]["mean"] == 1.0
