"""upskill's verifiers: parsed into a `verify` check, run on the answer in a fresh workspace."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anthropic  # noqa: F401  (imported once, not in every in-process run)
import pytest

import pytest_skills.backends.anthropic  # noqa: F401
from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.checks.verify import (
    Verification,
    Verifier,
    evaluate_verification,
    output_text,
    parse_verifier,
)
from pytest_skills.formats import load_suite
from tests.conftest import HAIKU, SKILL_MD
from tests.loopback import Call, LoopbackServer
from tests.test_sandbox import none_left

PY = sys.executable
CHECK_JSON = [PY, "-c", "import json; print(json.load(open('out.json')))"]


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ({"type": "contains", "value": "x"}, Verifier("contains", values=("x",))),
        ({"type": "contains", "values": ["a", "b"]}, Verifier("contains", values=("a", "b"))),
        ({"type": "file_exists", "path": "a/b.txt"}, Verifier("file_exists", path="a/b.txt")),
        ({"type": "file_exists"}, Verifier("file_exists")),
        (
            {"type": "file_contains", "path": "f", "contains": "x", "description": "d"},
            Verifier("file_contains", path="f", values=("x",)),
        ),
        (
            {"type": "command", "command": "make", "timeout": 5},
            Verifier("command", command="make", timeout=5.0),
        ),
        ({"type": "command", "cmd": ["ls", "-l"]}, Verifier("command", command=("ls", "-l"))),
    ],
)
def test_upskill_shapes(raw: dict[str, object], parsed: Verifier) -> None:
    assert parse_verifier(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"type": "shell", "command": "x"},
            "unknown verifier type 'shell'; known types: command, "
            "contains, file_contains, file_exists",
        ),
        ({"command": "x"}, "no 'type'"),
        ("make", "must be a mapping"),
        ({"type": "command"}, "needs 'command' (or 'cmd')"),
        ({"type": "command", "command": "x", "cmd": "y"}, "needs 'command' (or 'cmd')"),
        ({"type": "command", "command": "x", "timeout": 0}, "'timeout' must be a positive number"),
        ({"type": "command", "command": ""}, "non-empty string or a list"),
        ({"type": "file_exists", "path": "/etc/passwd"}, "must be a relative path"),
        ({"type": "file_exists", "path": "../up"}, "must be a relative path"),
        ({"type": "file_contains", "path": "f"}, "needs exactly one of 'value'"),
        (
            {"type": "contains", "value": "x", "path": "f"},
            "unknown key 'path' in a contains verifier",
        ),
    ],
)
def test_bad_verifiers(raw: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_verifier(raw)
    assert message in str(error.value)


def test_output_text_takes_code_blocks() -> None:
    assert output_text("just text") == "just text"
    answer = "Here:\n```toml\n[a]\nx = 1\n```\nand\n```\nmore\n```\n"
    assert output_text(answer) == "[a]\nx = 1\nmore\n"


# --- running -------------------------------------------------------------------------------


def verify(
    answer: str,
    *verifiers: Verifier,
    output: str = "out.json",
    files: tuple[tuple[str, str], ...] = (),
):
    return evaluate_verification(Verification(tuple(verifiers), output, files), answer)


def test_files_and_contains() -> None:
    answer = 'Sure:\n```json\n{"a": 1}\n```'
    result = verify(
        answer,
        Verifier("file_exists"),
        Verifier("file_exists", path="ctx.txt"),
        Verifier("file_contains", values=('"A"',)),
        Verifier("contains", values=("SURE",)),
        files=(("ctx.txt", "context"),),
    )
    assert result.passed, result
    assert result.actual == "4 of 4 passed"
    # Only what was found in the answer is marked on the page, not a file's contents.
    assert [c.marks for c in result.children] == [(), (), (), ("SURE",)]
    failed = verify(
        "no code",
        Verifier("file_exists", path="missing.txt"),
        Verifier("file_contains", values=("{",)),
        Verifier("contains", values=("x",)),
    )
    assert not failed.passed
    assert [(c.kind, c.passed, c.actual) for c in failed.children] == [
        ("file_exists verifier", False, "missing; the workspace has out.json"),
        ("file_contains verifier", False, "missing '{'"),
        ("contains verifier", False, "missing 'x'"),
    ]


def test_command_runs_in_the_workspace_and_shows_output_on_failure() -> None:
    ok = verify('```\n{"a": 1}\n```', Verifier("command", command=tuple(CHECK_JSON)))
    assert ok.passed, ok.children[0].actual
    bad = verify("not json", Verifier("command", command=tuple(CHECK_JSON)))
    (leaf,) = bad.failures()
    assert leaf.kind == "command verifier"
    assert leaf.expected.startswith(f"`{PY} -c import json")
    assert leaf.actual.startswith("exit status 1; output:\n      Traceback")
    assert "JSONDecodeError" in leaf.actual


def test_command_timeout_kills_the_whole_command() -> None:
    token = "300.123789"  # a sleep no one else runs: found by its command line
    # The shell waits on a child; the timeout must end the child too, not just the shell.
    command = f"echo started; sleep {token} & wait"
    result = verify("x", Verifier("command", command=command, timeout=0.5))
    (leaf,) = result.failures()
    assert leaf.actual == "timed out after 0.5s; output:\n      started"
    assert none_left(token), "the command's child outlived it"


def test_verifiers_are_anded_with_expected_at_parse_time(tmp_path: Path) -> None:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    (tmp_path / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    meta = tmp_path / "skill_meta.json"
    meta.write_text(
        json.dumps(
            {
                "tests": [
                    {
                        "input": "Write out.json",
                        "output_file": "out.json",
                        "expected": {"contains": "json"},
                        "verifiers": [{"type": "command", "cmd": CHECK_JSON}],
                    }
                ]
            }
        )
    )
    (case,) = load_suite(meta, registry).cases
    assert case.check.kind == "all"
    assert [c.kind for c in case.check.value] == ["contains", "verify"]
    assert registry.evaluate(case.check, '```json\n{"a": 1}\n```').passed
    assert not registry.evaluate(case.check, "json, but broken: {").passed  # the command fails
    assert not registry.evaluate(case.check, '```\n{"a": 1}\n```').passed  # no 'json'


# --- through pytest ----------------------------------------------------------------------------


def skilled_json(call: Call) -> str:
    """With the skill a JSON file in a code block; without it, prose."""
    return 'Here is out.json:\n```json\n{"a": 1}\n```' if call.system else "I would write JSON."


def write_meta(root: Path, tests: list[dict[str, object]]) -> Path:
    directory = root / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    target = directory / "skill_meta.json"
    target.write_text(json.dumps({"metadata": {}, "tests": tests}, indent=2))
    return target


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, "-p", "no:cacheprovider", "--skill-cache=off", *args
    )


@pytest.fixture
def server(provider_env: LoopbackServer) -> LoopbackServer:
    provider_env.responder = skilled_json
    return provider_env


def test_verifiers_count_for_both_conditions(
    pytester: pytest.Pytester, server: LoopbackServer
) -> None:
    write_meta(
        pytester.path,
        [
            {
                "id": "writes-json",
                "input": "Write out.json",
                "output_file": "out.json",
                "expected": {"contains": "json"},
                "verifiers": [
                    {"type": "file_contains", "path": "out.json", "value": '"a"'},
                    {"type": "command", "command": CHECK_JSON, "timeout": 20},
                ],
            }
        ],
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    # The baseline's prose says "JSON" (expected passes) but fails the verifiers.
    result.stdout.re_match_lines([r"anthropic:claude-haiku-4-5\s+1\s+1/1\s+100%\s+0/1\s+0%"])


def test_failing_command_shows_its_output(
    pytester: pytest.Pytester, server: LoopbackServer
) -> None:
    write_meta(
        pytester.path,
        [
            {
                "id": "checked",
                "input": "Write out.json",
                "output_file": "out.json",
                "expected": {"contains": "json"},
                "verifiers": [
                    {"type": "command", "cmd": "echo checking $(cat out.json); exit 3"},
                    {"type": "command", "cmd": "sleep 20", "timeout": 0.3},
                ],
            }
        ],
    )
    result = run(pytester, "--no-skill-baseline")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  command verifier failed",
            "    expected: `echo checking $(cat out.json); exit 3` exits with status 0 within 30s",
            "    actual:   exit status 3; output:",
            '      checking {"a": 1}',
            "  command verifier failed",
            "    expected: `sleep 20` exits with status 0 within 0.3s",
            "    actual:   timed out after 0.3s; output:",
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("verifiers", "expected"),
    [
        pytest.param(
            [{"type": "file_exists", "path": "a"}, {"type": "bogus"}],
            "skill_meta.json:14: verifier 2: unknown verifier type 'bogus'; "
            "known types: command, contains, file_contains, file_exists",
            id="unknown-type",
        ),
        pytest.param(
            [{"type": "command", "cmd": "true", "timeout": "soon"}],
            "skill_meta.json:10: verifier 1: 'timeout' must be a positive number*",
            id="bad-timeout",
        ),
        pytest.param(
            [{"type": "file_contains", "path": "a", "valeu": "x"}],
            "skill_meta.json:10: verifier 1: unknown key 'valeu' in a file_contains verifier*",
            id="unknown-key",
        ),
        pytest.param(
            {"type": "command"},
            "skill_meta.json:9: 'verifiers' must be a list of mappings",
            id="not-a-list",
        ),
    ],
)
def test_bad_verifier_entries_are_collection_errors(
    pytester: pytest.Pytester, verifiers: object, expected: str
) -> None:
    write_meta(
        pytester.path, [{"input": "x", "expected": {"contains": "x"}, "verifiers": verifiers}]
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*/demo/{expected}"])
    assert "Traceback" not in result.stdout.str()


def test_bad_output_file_is_a_collection_error(pytester: pytest.Pytester) -> None:
    write_meta(
        pytester.path,
        [
            {
                "input": "x",
                "expected": {"contains": "x"},
                "output_file": "/tmp/out",
                "verifiers": [{"type": "file_exists"}],
            }
        ],
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*/demo/skill_meta.json:*: 'output_file': '/tmp/out' must be a relative path*"]
    )
