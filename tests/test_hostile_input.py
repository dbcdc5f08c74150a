"""Hostile and odd test files: one clear collection error, never a hang or a traceback."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_skills.checks import CheckError, CheckRegistry, CheckSpecError, register_builtin_checks
from pytest_skills.checks.registry import MAX_CHECK_DEPTH
from pytest_skills.checks.verify import run_command
from pytest_skills.formats.loading import MAX_DEPTH, DataError, load_json, load_yaml
from tests.conftest import HAIKU, SKILL_MD
from tests.conftest import output as everything
from tests.loopback import LoopbackServer
from tests.test_sandbox import none_left

#: 435 bytes of nested anchors that stand for 10**9 strings (the "billion laughs").
BILLION_LAUGHS = "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def write(root: Path, name: str, content: str) -> Path:
    directory = root / "demo"
    directory.mkdir(exist_ok=True)
    (directory / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    target = directory / name
    target.write_text(content, encoding="utf-8")
    return target


def collect(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, "--skill-cache=off", "-p", "no:cacheprovider", *args
    )


def nested_any(depth: int) -> str:
    """A case whose ``expect`` nests ``any`` ``depth`` levels deep, as flow YAML."""
    expect = "{contains: x}"
    for _ in range(depth):
        expect = f"{{any: [{expect}]}}"
    return f"cases:\n  - input: hi\n    expect: {expect}\n"


HOSTILE = [
    pytest.param(
        "demo.skill.yaml",
        "cases: [" * 5000 + "]" * 5000,
        "demo.skill.yaml:1: *nest*",
        id="yaml-nested-5000-deep",
    ),
    pytest.param(
        "skill_meta.json",
        '{"cases": ' + "[" * 5000 + "]" * 5000 + "}",
        f"skill_meta.json:1: mappings and lists are nested more than {MAX_DEPTH} levels deep",
        id="json-nested-5000-deep",
    ),
    pytest.param(
        "demo.skill.yaml",
        nested_any(MAX_CHECK_DEPTH + 1),
        "demo.skill.yaml:3: 'all' and 'any' nest more than 16 levels deep; flatten them",
        id="any-nested-too-deep",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    expect: {regex: 'a{99999999999}'}\n",
        "demo.skill.yaml:3: regex: bad regular expression 'a{99999999999}': *",
        id="regex-repeat-overflows",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    expect: {regex: '" + "(" * 3000 + ")" * 3000 + "'}\n",
        "demo.skill.yaml:3: regex: bad regular expression *: maximum recursion depth exceeded*",
        id="regex-groups-nested-3000-deep",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    temperature: .nan\n    expect: {contains: x}\n",
        "demo.skill.yaml:3: temperature must be a finite number, not nan",
        id="temperature-nan",
    ),
    pytest.param(
        "demo.skill.yaml",
        "defaults: {temperature: .inf}\ncases:\n  - input: hi\n    expect: {contains: x}\n",
        "demo.skill.yaml:1: temperature must be a finite number, not inf",
        id="temperature-inf",
    ),
    pytest.param(
        "skill_meta.json",
        '{"cases": [{"input": "hi", "max_tokens": 100000000000000000000,'
        ' "expected": {"contains": "x"}}]}',
        "skill_meta.json:1: max_tokens 100,000,000,000,000,000,000 is more than any model *",
        id="max-tokens-1e20",
    ),
    pytest.param(
        "skill_meta.json",
        '{"cases": [{"input": "hi", "temperature": NaN, "expected": {"contains": "x"}}]}',
        "skill_meta.json: invalid JSON: NaN is not a JSON value",
        id="json-nan",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - id: true\n    input: hi\n    expect: {contains: x}\n",
        "demo.skill.yaml:2: 'id' must be a number or a non-empty string",
        id="boolean-id",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    expect: {contains: x}\n    input: again\n",
        "demo.skill.yaml:4: duplicate key 'input' (first on line 2)",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "skill_meta.json",
        '{"cases": [],\n "cases": [{"input": "hi", "expected": {"contains": "x"}}]}',
        "skill_meta.json:2: duplicate key 'cases' (first on line 1)",
        id="duplicate-json-key",
    ),
    pytest.param(
        "demo.skill.yaml",
        "base: &b {contains: x}\ncases:\n  - input: hi\n    expect: &loop {all: [*loop]}\n",
        "demo.skill.yaml:4: an alias refers to a value that contains it",
        id="recursive-alias",
    ),
    pytest.param(
        "demo.skill.yaml",
        'cases:\n  - input: hi\n    output_file: "a\\0b"\n'
        "    verifiers: [{type: file_exists}]\n    expect: {contains: x}\n",
        "demo.skill.yaml:3: 'output_file': 'a\\x00b' must not contain a NUL character",
        id="nul-in-output-file",
    ),
    pytest.param(
        "demo.skill.yaml",
        'cases:\n  - input: hi\n    verifiers: [{type: command, command: "true\\0x"}]\n'
        "    expect: {contains: x}\n",
        "demo.skill.yaml:3: verifier 1: 'command' must not contain a NUL character",
        id="nul-in-command",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    verifiers: [{type: command, command: 'true', timeout: .inf}]\n"
        "    expect: {contains: x}\n",
        "demo.skill.yaml:3: verifier 1: 'timeout' must be a positive number of seconds *",
        id="infinite-verifier-timeout",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), HOSTILE)
def test_hostile_file_is_one_clear_collection_error(
    pytester: pytest.Pytester, name: str, content: str, message: str
) -> None:
    write(pytester.path, name, content)
    result = collect(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"{pytester.path}/demo/{message}"])
    assert "Traceback" not in everything(result)


def _limit_memory() -> None:
    # A regression must fail this test, not take the machine down with it.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_billion_laughs_is_refused_at_once(pytester: pytest.Pytester) -> None:
    assert len(BILLION_LAUGHS) < 500
    write(pytester.path, "demo.skill.yaml", BILLION_LAUGHS + "cases: *i\n")
    environment = {**os.environ, "CI": "", "PYTHONPATH": os.pathsep.join(sys.path)}
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "--skill-model", HAIKU, "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=environment,
        capture_output=True,
        text=True,
        preexec_fn=_limit_memory,
        timeout=300,  # a hang guard only: the refusal is immediate
    )
    assert re.search(
        r"demo.skill.yaml:\d+: YAML aliases expand to more than 10,000", finished.stdout
    )
    assert "1 error" in finished.stdout
    assert "Traceback" not in finished.stdout + finished.stderr


def test_a_few_aliases_still_work(pytester: pytest.Pytester, provider_env: object) -> None:
    write(
        pytester.path,
        "demo.skill.yaml",
        textwrap.dedent(
            """
            defaults: &sampling {temperature: 0, max_tokens: 64}
            cases:
              - {id: one, input: hi, expect: &echoed {contains: echo}}
              - {id: two, input: ho, expect: *echoed}
            """
        ),
    )
    pytester.runpytest("--skill-model", HAIKU, "--skill-cache=off").assert_outcomes(passed=2)


def test_a_file_reached_through_a_symlink_loop_is_collected_once(
    pytester: pytest.Pytester,
) -> None:
    write(
        pytester.path, "demo.skill.yaml", "cases:\n  - {id: a, input: hi, expect: {contains: x}}\n"
    )
    (pytester.path / "demo" / "loop").symlink_to("..", target_is_directory=True)
    result = collect(pytester, "--collect-only", "-q")
    assert [line for line in result.outlines if "::a[" in line] == [
        f"demo/demo.skill.yaml::a[{HAIKU}]"
    ]


def test_oversized_file_is_refused_before_reading(pytester: pytest.Pytester) -> None:
    target = write(pytester.path, "demo.skill.yaml", "cases: []\n")
    with target.open("a") as handle:
        handle.truncate(11 * 2**20)
    result = collect(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*demo.skill.yaml: the file is 11.0 MB; skill test files are limited to 10 MB*"]
    )


# --- the reader and the registry on their own ----------------------------------------


def test_json_lines_survive_escapes() -> None:
    text = json.dumps({"a": 'café \U0001f600 \\/ "q"', "cases": [1, {"input": "é"}]}, indent=1)
    _, lines = load_json(text)
    assert text.splitlines()[lines[("cases", 1, "input")] - 1].strip() == '"input": "\\u00e9"'
    assert lines[("cases", 0)] == 4


def test_check_nesting_is_bounded_for_python_callers_too() -> None:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    expect: dict = {"contains": "x"}
    for _ in range(1500):
        expect = {"any": [expect]}
    with pytest.raises(CheckSpecError, match="nest more than 16 levels"):
        registry.parse(expect)


@pytest.mark.parametrize("loader", [load_json, load_yaml])
def test_deep_nesting_is_refused_while_reading(loader) -> None:
    with pytest.raises(DataError, match="nested more than 64 levels"):
        loader("[" * 100_000 + "]" * 100_000)


def test_detached_verifier_processes_do_not_outlive_the_check(tmp_path: Path) -> None:
    # Found by its command line: in bubblewrap's PID namespace a pid means nothing outside.
    token = "300.424242"
    command = f"setsid sh -c 'exec sleep {token}' > /dev/null 2>&1 & sleep 30"
    status, _ = run_command(command, tmp_path, timeout=1.0)
    assert status is None
    assert none_left(token), "the detached sleep outlived its verifier"


# --- answers that would hang a check or flood the terminal ----------------------------


def test_a_catastrophic_regex_gives_up_instead_of_hanging() -> None:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    check = registry.parse({"regex": "(a|aa)+$"})
    with pytest.raises(CheckError, match=r"regex /\(a\|aa\)\+\$/ gave up after 2 s"):
        registry.evaluate(check, "a" * 80 + "b")
    # Patterns that only look dangerous still match at once.
    assert registry.evaluate(registry.parse({"regex": "(a+)+$"}), "a" * 80 + "b").passed is False


def test_a_catastrophic_regex_errors_its_item_and_the_run_ends(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    provider_env.responder = lambda call: "a" * 80 + "b"
    write(
        pytester.path,
        "demo.skill.yaml",
        "cases:\n  - {id: slow, input: hi, expect: {regex: '(a|aa)+$'}}\n",
    )
    result = collect(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*gave up after 2 s on a 81-character answer*"])


def test_a_huge_answer_is_clipped_in_the_failure_and_whole_in_the_report(
    pytester: pytest.Pytester, provider_env: LoopbackServer, tmp_path: Path
) -> None:
    answer = "word " * 400_000  # 2 MB
    provider_env.responder = lambda call: answer
    write(
        pytester.path,
        "demo.skill.yaml",
        "cases:\n  - {id: big, input: hi, max_tokens: 1000000, expect: {equals: short}}\n",
    )
    report = tmp_path / "report.json"
    result = collect(pytester, f"--skill-report={report}")
    result.assert_outcomes(failed=1)
    shown = everything(result)
    assert "characters left out here; --skill-report and JUnit XML keep the whole answer" in shown
    assert len(shown) < 40_000
    outputs = [r["output"] for r in json.loads(report.read_text())["results"]]
    assert answer.strip() in [o.strip() for o in outputs if o]
