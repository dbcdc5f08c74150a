"""Verifier commands in a sandbox: no secrets, limits, nothing left behind; with
bubblewrap, no network and nothing written outside the workspace."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import pytest

from pytest_skills.checks.sandbox import SandboxPolicy, bwrap_problem
from pytest_skills.checks.verify import Verification, Verifier, evaluate_verification
from tests.conftest import HAIKU, SKILL_MD
from tests.loopback import LoopbackServer

PY = sys.executable
needs_bwrap = pytest.mark.skipif(
    bwrap_problem() is not None, reason=f"bubblewrap is not usable: {bwrap_problem()}"
)
needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the reaper and /proc are Linux's"
)
MODES = [
    pytest.param("none", marks=needs_linux, id="no-sandbox"),
    pytest.param("bwrap", marks=needs_bwrap, id="bwrap"),
]


def verify(command: str | tuple[str, ...], policy: SandboxPolicy, timeout: float = 60.0):
    (leaf,) = evaluate_verification(
        Verification((Verifier("command", command=command, timeout=timeout),)),
        "the answer",
        policy,
    ).children
    return leaf


def running_with(token: str) -> list[int]:
    """Processes whose command line holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def none_left(token: str) -> bool:
    # A guard of minutes stops a hang; the reaper has ended them before the check returns.
    guard = time.monotonic() + 300
    while running_with(token) and time.monotonic() < guard:
        time.sleep(0.05)
    return not running_with(token)


@pytest.mark.parametrize("mode", MODES)
def test_a_detached_verifier_that_clears_its_environment_leaves_nothing(mode: str) -> None:
    token = f"{secrets.randbelow(10**6) + 10**6}.5"  # a sleep length no one else uses
    command = (
        # setsid with a cleared environment, and a double fork: no marker, no group.
        f"env -i setsid sh -c 'sleep {token} & exit 0' </dev/null >/dev/null 2>&1; "
        f"(env -i sh -c 'sleep {token}' & ) ; sleep 0.2; echo detached"
    )
    leaf = verify(command, SandboxPolicy(mode))
    assert leaf.passed, leaf.actual
    assert none_left(token), f"{len(running_with(token))} detached sleeps outlived the check"


@pytest.mark.parametrize("mode", MODES)
def test_a_timed_out_verifier_leaves_nothing(mode: str) -> None:
    token = f"{secrets.randbelow(10**6) + 10**6}.25"
    command = f"env -i setsid sleep {token} & sleep {token}"
    leaf = verify(command, SandboxPolicy(mode), timeout=0.5)
    assert leaf.actual.startswith("timed out after 0.5s")
    assert none_left(token)


@pytest.mark.parametrize("mode", MODES)
def test_a_verifier_sees_no_secret_unless_passed(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-for-verifiers")
    monkeypatch.setenv("TOOL_CONFIG", "passed on purpose")
    # Prints its whole environment, then fails, so the output is shown.
    show = (PY, "-c", "import os, sys; print(dict(os.environ)); sys.exit(1)")
    shown = verify(show, SandboxPolicy(mode)).actual
    assert "'HOME'" in shown and "sk-ant-not-for-verifiers" not in shown
    seen = verify(
        (PY, "-c", "import os, sys; sys.exit(0 if 'ANTHROPIC_API_KEY' in os.environ else 4)"),
        SandboxPolicy(mode),
    )
    assert seen.actual.startswith("exit status 4"), "the key reached the verifier"
    passed = verify(
        (PY, "-c", "import os, sys; sys.exit(os.environ['TOOL_CONFIG'] != 'passed on purpose')"),
        SandboxPolicy(mode, pass_env=("TOOL_CONFIG",)),
    )
    assert passed.passed, passed.actual


@pytest.mark.parametrize("mode", MODES)
def test_memory_is_limited(mode: str) -> None:
    leaf = verify((PY, "-c", "b = bytearray(6 * 2**30); print('allocated')"), SandboxPolicy(mode))
    assert not leaf.passed
    assert "MemoryError" in leaf.actual


@needs_bwrap
def test_under_bwrap_nothing_is_written_outside_the_workspace(tmp_path: Path) -> None:
    outside = tmp_path / "stolen.txt"
    elsewhere = Path(__file__).with_name("written-by-a-verifier.txt")
    leaf = verify(
        f"echo key > {outside}; echo key > {elsewhere}; "
        "echo inside > mine.txt && cat mine.txt; exit 1",
        SandboxPolicy("bwrap"),
    )
    assert "Read-only file system" in leaf.actual and "inside" in leaf.actual
    assert not outside.exists() and not elsewhere.exists()


@needs_bwrap
def test_under_bwrap_there_is_no_network(loopback: LoopbackServer) -> None:
    fetch = (
        PY,
        "-c",
        f"import urllib.request; urllib.request.urlopen({loopback.url!r} + '/v1/messages', "
        "timeout=20)",
    )
    leaf = verify(fetch, SandboxPolicy("bwrap"))
    assert not leaf.passed
    assert "URLError" in leaf.actual or "refused" in leaf.actual
    assert loopback.calls == []


def test_bwrap_demanded_where_it_cannot_run_is_one_clear_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    bwrap_problem.cache_clear()
    try:
        leaf = verify("true", SandboxPolicy("bwrap"))
    finally:
        bwrap_problem.cache_clear()
    assert leaf.actual.startswith("exit status -1; output:\n      --skill-verifier-sandbox bwrap: ")
    assert "install bubblewrap or choose --skill-verifier-sandbox auto" in leaf.actual


# --- through pytest ------------------------------------------------------------------------


def write_meta(root: Path, verifiers: list[dict[str, object]]) -> None:
    directory = root / "demo"
    directory.mkdir()
    (directory / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    test = {"id": "v", "input": "x", "expected": {"contains": "x"}, "verifiers": verifiers}
    (directory / "skill_meta.json").write_text(json.dumps({"tests": [test]}))


def test_the_header_says_which_isolation_and_options_choose(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    provider_env.responder = lambda call: "x"
    probe = f"{PY} -c \"import os, sys; sys.exit('ANTHROPIC_API_KEY' in os.environ)\""
    write_meta(pytester.path, [{"type": "command", "command": probe}])
    args = ("--skill-model", HAIKU, "-p", "no:cacheprovider", "--skill-cache=off")
    result = pytester.runpytest(*args, "--skill-verifier-sandbox", "none", "--no-skill-baseline")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["skills: verifier commands run without a sandbox (--skill-verifier-sandbox none)*"]
    )
    passed = pytester.runpytest(
        *args, "--skill-verifier-env", "ANTHROPIC_API_KEY", "--no-skill-baseline"
    )
    passed.assert_outcomes(failed=1)  # named on purpose, so the probe sees it
    passed.stdout.fnmatch_lines(
        ["skills: verifier commands run *variables passed: ANTHROPIC_API_KEY"]
    )
    if bwrap_problem() is None:
        passed.stdout.fnmatch_lines(["skills: verifier commands run in bubblewrap: no network*"])
