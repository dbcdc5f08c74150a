"""What a test file names beside itself (issue 19, findings 8, 10, 11 and 4's context
file): regexes measured before they are compiled, files read once within a budget,
tests files parsed once, and never a read through a symlink out of the project.

Amplification cases run pytest in a subprocess under an address-space limit: a
regression fails the test with a MemoryError instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.formats import load_scenario, open_source, read_scenarios
from tests.conftest import HAIKU, SKILL_MD
from tests.conftest import output as everything

#: The address space a limited pytest run may use: the plugin needs a fraction of it;
#: every amplification below needs more than all of it.
MEMORY_LIMIT = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def limited_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest on ``directory`` in a process that cannot use more than MEMORY_LIMIT."""
    environment = {
        **os.environ,
        "CI": "",
        "ANTHROPIC_API_KEY": "test-key-0000",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--skill-model", HAIKU, "-p", "no:cacheprovider", *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        preexec_fn=_limit_memory,
        timeout=600,  # a hang guard only: every case here ends at once
    )


def skill(directory: Path, name: str | None = None, body: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = name or directory.name
    (directory / "SKILL.md").write_text(SKILL_MD.format(name=name, marker=name) + body)
    return directory


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def collect(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, "--skill-cache=off", "-p", "no:cacheprovider", *args
    )


@pytest.fixture
def registry() -> CheckRegistry:
    made = CheckRegistry()
    register_builtin_checks(made)
    return made


# --- regexes: measured before they are compiled -----------------------------------------


def test_a_regex_whose_repeats_unroll_to_billions_is_refused_at_once(
    pytester: pytest.Pytester,
) -> None:
    # 27 characters that the regex package would unroll into 10**9 atoms.
    skill(pytester.path / "demo")
    (pytester.path / "demo" / "demo.skill.yaml").write_text(
        "cases:\n  - input: hi\n    expect: {regex: '(?:(?:a{1000}){1000}){1000}'}\n"
    )
    finished = limited_pytest(pytester.path, "--collect-only")
    assert (
        "demo.skill.yaml:3: regex: bad regular expression '(?:(?:a{1000}){1000}){1000}': it "
        "repeats to 1,002,002,000 atoms or more" in finished.stdout
    )
    assert "Traceback" not in finished.stdout + finished.stderr


def alternation(seed: int, words: int) -> str:
    return "|".join(f"w{seed}x{i:05d}" for i in range(words))


def test_a_file_of_huge_alternations_is_refused_before_compiling_them_all(
    pytester: pytest.Pytester,
) -> None:
    # 30 distinct patterns of 9,000+ characters: each allowed alone, too many together.
    skill(pytester.path / "demo")
    cases = [
        {"id": f"c{n}", "input": "hi", "expect": {"regex": alternation(n, 900)}} for n in range(30)
    ]
    (pytester.path / "demo" / "demo.skill.yaml").write_text(json.dumps({"cases": cases}))
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*demo.skill.yaml:1: regex: the file's distinct regular expressions add up to more "
            "than 200,000 characters or 1,000,000 unrolled atoms*"
        ]
    )


def test_the_same_huge_pattern_in_many_cases_is_counted_once(pytester: pytest.Pytester) -> None:
    skill(pytester.path / "demo")
    pattern = alternation(0, 900)
    cases = [{"id": f"c{n}", "input": "hi", "expect": {"regex": pattern}} for n in range(60)]
    (pytester.path / "demo" / "demo.skill.yaml").write_text(json.dumps({"cases": cases}))
    result = collect(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["60 tests collected*"])


def test_one_overlong_pattern_is_refused(pytester: pytest.Pytester) -> None:
    skill(pytester.path / "demo")
    (pytester.path / "demo" / "demo.skill.yaml").write_text(
        json.dumps({"cases": [{"input": "hi", "expect": {"regex": alternation(0, 2000)}}]})
    )
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*demo.skill.yaml:1: regex: bad regular expression 'w0x00000|*' (17,999 characters): "
            "patterns are limited to 10,000 characters*"
        ]
    )


# --- files read once, within a budget ----------------------------------------------------


def test_a_skill_listed_1500_times_is_read_and_injected_once(pytester: pytest.Pytester) -> None:
    skill(pytester.path / "skills" / "big", body="x" * (2 * 2**20))  # 2 MB
    write_json(pytester.path / "evals" / "t.json", [{"input": "hi", "expected": {"contains": "x"}}])
    write_json(
        pytester.path / ".upskill" / "evals.json",
        {"scenarios": [{"id": "s", "skills": ["skills/big"] * 1500, "tests": "evals/t.json"}]},
    )
    finished = limited_pytest(pytester.path, "--collect-only", "-q")
    assert "1 test collected" in finished.stdout, finished.stdout[-2000:] + finished.stderr
    assert "lists the skill skills/big again; it is injected once" in finished.stdout
    assert "MemoryError" not in finished.stdout + finished.stderr


def test_scenarios_naming_one_skill_share_it(
    pytester: pytest.Pytester, registry: CheckRegistry
) -> None:
    skill(pytester.path / "skills" / "one")
    write_json(pytester.path / "evals" / "t.json", [{"input": "hi", "expected": {"contains": "x"}}])
    manifest = write_json(
        pytester.path / ".upskill" / "evals.json",
        {
            "scenarios": [
                {"id": f"s{n}", "skills": ["skills/one"], "tests": "evals/t.json"} for n in range(5)
            ]
        },
    )
    source = open_source(manifest)
    assert source is not None
    scenarios, _ = read_scenarios(source)
    suites = [load_scenario(source, scenario, registry) for scenario in scenarios]
    assert len({id(suite.skill) for suite in suites}) == 1


@pytest.fixture
def opened_files() -> Iterator[list[str]]:
    """The paths every ``open`` (Python's and os.open) names while the test runs."""
    seen: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and active[0] and args and isinstance(args[0], (str, Path)):
            seen.append(str(args[0]))

    sys.addaudithook(hook)  # cannot be removed: it goes quiet after the test
    try:
        yield seen
    finally:
        active[0] = False


def test_a_tests_file_named_by_many_scenarios_is_parsed_once(
    tmp_path: Path, registry: CheckRegistry, opened_files: list[str]
) -> None:
    skill(tmp_path / "skills" / "one")
    tests = write_json(
        tmp_path / "evals" / "shared.json",
        [{"id": f"c{n}", "input": "hi", "expected": {"contains": "x"}} for n in range(50)],
    )
    manifest = write_json(
        tmp_path / ".upskill" / "evals.json",
        {
            "scenarios": [
                {"id": f"s{n}", "skills": ["skills/one"], "tests": "evals/shared.json"}
                for n in range(40)
            ]
        },
    )
    source = open_source(manifest)
    assert source is not None
    scenarios, _ = read_scenarios(source)
    opened_files.clear()
    suites = [load_scenario(source, scenario, registry) for scenario in scenarios]
    assert [len(suite.cases) for suite in suites] == [50] * 40
    assert sum(os.path.samefile(name, tests) for name in opened_files) == 1


def test_a_context_file_listed_300_times_is_read_and_given_once(
    pytester: pytest.Pytester,
) -> None:
    project = pytester.path / "kit"
    skill(project)
    (project / "evals" / "files").mkdir(parents=True)
    (project / "evals" / "files" / "big.txt").write_text("y" * (5 * 2**20))  # 5 MB
    write_json(
        project / "evals" / "evals.json",
        {
            "skill_name": "kit",
            "evals": [
                {
                    "id": 1,
                    "prompt": "Read it",
                    "expected_output": "It was read.",
                    "files": ["evals/files/big.txt"] * 300,
                }
            ],
        },
    )
    finished = limited_pytest(pytester.path, "--collect-only", "-q")
    assert "1 test collected" in finished.stdout, finished.stdout[-2000:] + finished.stderr
    assert "file 'evals/files/big.txt' is listed again; it is given once" in finished.stdout
    assert "MemoryError" not in finished.stdout + finished.stderr


def test_distinct_context_files_share_one_budget(pytester: pytest.Pytester) -> None:
    project = pytester.path / "kit"
    skill(project)
    files = project / "evals" / "files"
    files.mkdir(parents=True)
    for n in range(4):
        with (files / f"part{n}.txt").open("w") as handle:
            handle.write("z" * (9 * 2**20))  # 36 MB in all, each below 10 MB
    write_json(
        project / "evals" / "evals.json",
        {
            "evals": [
                {
                    "id": n,
                    "prompt": "Read",
                    "expected_output": "Read.",
                    "files": [f"evals/files/part{n}.txt"],
                }
                for n in range(4)
            ]
        },
    )
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*evals.json:*: cannot read evals/files/part3.txt: it brings the files this test file "
            "names to 36.0 MB; together they are limited to 32 MB*"
        ]
    )


def test_a_300_mb_skill_is_refused_before_it_is_read(pytester: pytest.Pytester) -> None:
    directory = skill(pytester.path / "demo")
    with (directory / "SKILL.md").open("r+b") as handle:
        handle.truncate(300 * 2**20)  # sparse: no disk, the size is what counts
    (directory / "demo.skill.yaml").write_text("cases:\n  - {input: hi, expect: {contains: x}}\n")
    finished = limited_pytest(pytester.path, "--collect-only")
    assert (
        "demo/SKILL.md: cannot read the skill: it is 300.0 MB; a skill is limited to 10 MB"
        in finished.stdout
    ), finished.stdout[-2000:]
    assert "Traceback" not in finished.stdout + finished.stderr


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    from pytest_skills.formats.files import read_text  # new in issue 19

    fifo = tmp_path / "SKILL.md"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"it is not a regular file \(a FIFO, device or socket\)"):
        read_text(fifo, "skill")


# --- symlinks out of the project ----------------------------------------------------


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A skill directory outside the project (pytester's directory)."""
    return skill(tmp_path_factory.mktemp("elsewhere") / "secret", name="secret")


def test_a_context_file_linked_to_proc_environ_is_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "hunter2-not-for-prompts")
    project = pytester.path / "kit"
    skill(project)
    (project / "evals" / "files").mkdir(parents=True)
    link = project / "evals" / "files" / "env.txt"
    link.symlink_to("/proc/self/environ")
    write_json(
        project / "evals" / "evals.json",
        {
            "evals": [
                {
                    "id": 1,
                    "prompt": "Read",
                    "expected_output": "Read.",
                    "files": ["evals/files/env.txt"],
                }
            ]
        },
    )
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*evals.json:*: cannot read evals/files/env.txt: {link} is a symlink to /proc/*"
            "a view of this machine, not a project file*"
        ]
    )
    assert "hunter2" not in everything(result)


def test_a_native_skill_linked_out_of_the_project_is_refused(
    pytester: pytest.Pytester, outside: Path
) -> None:
    (pytester.path / "demo").mkdir()
    link = pytester.path / "demo" / "linked"
    link.symlink_to(outside, target_is_directory=True)
    (pytester.path / "demo" / "demo.skill.yaml").write_text(
        "skill: linked\ncases:\n  - {input: hi, expect: {contains: x}}\n"
    )
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*linked/SKILL.md: cannot read the skill: {link} is a symlink to {outside}, outside "
            f"the project {pytester.path}; copy the file into the project*"
        ]
    )


def test_a_link_then_dot_dot_out_of_the_project_is_refused(
    pytester: pytest.Pytester, outside: Path
) -> None:
    # 'hop/..' is the directory above the link's target, not 'demo': outside.
    (outside / "sub").mkdir()
    (pytester.path / "demo").mkdir()
    link = pytester.path / "demo" / "hop"
    link.symlink_to(outside / "sub", target_is_directory=True)
    (pytester.path / "demo" / "demo.skill.yaml").write_text(
        "skill: hop/../SKILL.md\ncases:\n  - {input: hi, expect: {contains: x}}\n"
    )
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*cannot read the skill: {link} is a symlink to {outside}/sub, outside the project*"]
    )


def test_a_manifest_skill_linked_out_of_the_project_is_refused(
    pytester: pytest.Pytester, outside: Path
) -> None:
    (pytester.path / "skills").mkdir()
    (pytester.path / "skills" / "secret").symlink_to(outside, target_is_directory=True)
    write_json(pytester.path / "evals" / "t.json", [{"input": "hi", "expected": {"contains": "x"}}])
    write_json(
        pytester.path / ".upskill" / "evals.json",
        {"scenarios": [{"id": "s", "skills": ["skills/secret"], "tests": "evals/t.json"}]},
    )
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*evals.json:*: scenario 's': *skills/secret/SKILL.md: cannot read the skill: "
            f"{pytester.path}/skills/secret is a symlink to {outside}, outside the project*"
        ]
    )


def test_skill_name_must_be_a_name(pytester: pytest.Pytester, outside: Path) -> None:
    project = pytester.path / "kit"
    (project / "evals").mkdir(parents=True)
    write_json(
        project / "evals" / "evals.json",
        {
            "skill_name": str(outside),
            "evals": [{"id": 1, "prompt": "Hi", "expected_output": "Hello."}],
        },
    )
    result = collect(pytester, "--collect-only")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*evals.json:1: 'skill_name' '{outside}' must be a name, not a path*"]
    )


def test_symlinks_inside_the_project_still_work(pytester: pytest.Pytester) -> None:
    skill(pytester.path / "shared" / "demo", name="demo")
    (pytester.path / "suite").mkdir()
    (pytester.path / "suite" / "demo").symlink_to(
        pytester.path / "shared" / "demo", target_is_directory=True
    )
    (pytester.path / "suite" / "demo.skill.yaml").write_text(
        "skill: demo\ncases:\n  - {id: a, input: hi, expect: {contains: x}}\n"
    )
    result = collect(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"suite/demo.skill.yaml::a[[]{HAIKU}[]]"])


def test_a_skill_linked_inside_the_project_is_one_skill(
    tmp_path: Path, registry: CheckRegistry
) -> None:
    skill(tmp_path / "skills" / "real", name="real")
    (tmp_path / "skills" / "alias").symlink_to(tmp_path / "skills" / "real")
    write_json(tmp_path / "evals" / "t.json", [{"input": "hi", "expected": {"contains": "x"}}])
    manifest = write_json(
        tmp_path / ".upskill" / "evals.json",
        {
            "scenarios": [
                {"id": "s", "skills": ["skills/real", "skills/alias"], "tests": "evals/t.json"}
            ]
        },
    )
    source = open_source(manifest)
    assert source is not None
    scenarios, _ = read_scenarios(source)
    from pytest_skills.formats import files  # new in issue 19

    previous = files.set_project_root(tmp_path)  # what the plugin does with the rootdir
    try:
        suite = load_scenario(source, scenarios[0], registry)
    finally:
        files.set_project_root(previous)
    assert [s.name for s in suite.skills] == ["real"]
    assert any(
        "lists the skill skills/alias again; it is injected once" in w for w in suite.warnings
    )
