"""Parsing the three test file formats and SKILL.md, without pytest in the loop."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.formats import FormatError, load_skill, load_suite, open_source

SKILL_MD = """\
---
name: kernel-builder
description: Builds CUDA kernels with the right build.toml.
---
# How to build

Target H100 with capabilities = ["9.0"].
"""


@pytest.fixture
def registry() -> CheckRegistry:
    registry = CheckRegistry()
    register_builtin_checks(registry)
    return registry


def skill_dir(tmp_path: Path, name: str = "kernel-builder", skill_md: str = SKILL_MD) -> Path:
    directory = tmp_path / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SKILL.md").write_text(skill_md, encoding="utf-8")
    return directory


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# --- skill_meta.json, article form ------------------------------------------------------


def test_article_form(tmp_path: Path, registry: CheckRegistry) -> None:
    directory = skill_dir(tmp_path)
    meta = directory / "skill_meta.json"
    meta.write_text(
        json.dumps(
            {
                "cases": [
                    {"input": "Create a build.toml for H100", "expected": {"contains": "9.0"}},
                    {"input": "And for A100?", "expected": {"contains": "8.0"}},
                ]
            },
            indent=2,
        )
    )

    suite = load_suite(meta, registry)

    assert suite.format == "article"
    assert suite.path == meta
    assert [case.id for case in suite.cases] == ["case-1", "case-2"]
    first = suite.cases[0]
    assert first.input == "Create a build.toml for H100"
    assert first.prompt == "Create a build.toml for H100"
    assert first.check.kind == "contains"
    assert first.check.value == ("9.0",)
    assert registry.evaluate(first.check, 'capabilities = ["9.0"]').passed
    assert not registry.evaluate(first.check, "sm_80").passed
    assert suite.skill.name == "kernel-builder"
    assert suite.skill.path == directory / "SKILL.md"


def test_json_line_numbers_are_kept(tmp_path: Path, registry: CheckRegistry) -> None:
    directory = skill_dir(tmp_path)
    meta = write(
        directory / "skill_meta.json",
        """
        {
          "cases": [
            {
              "input": "first",
              "expected": {"contains": "a"}
            },
            {
              "input": "second",
              "expected": {"contains": "b"}
            }
          ]
        }
    """,
    )
    suite = load_suite(meta, registry)
    # A case's line is where its mapping opens.
    assert [case.line for case in suite.cases] == [3, 7]


# --- skill_meta.json, upskill form ------------------------------------------------------


def test_upskill_form(tmp_path: Path, registry: CheckRegistry) -> None:
    directory = skill_dir(tmp_path)
    meta = directory / "skill_meta.json"
    meta.write_text(
        json.dumps(
            {
                "metadata": {"name": "kernel-builder", "version": "1.0"},
                "tests": [
                    {
                        "input": "Fix the build file",
                        "context": {
                            "files": {
                                "build.toml": '[general]\nname = "k"\n',
                                "kernel.cu": "__global__ void k() {}",
                            }
                        },
                        "expected": {"contains": ["capabilities", "9.0"]},
                        "verifiers": [{"type": "file_exists", "path": "build.toml"}],
                        "output_file": "build.toml",
                    }
                ],
            },
            indent=2,
        )
    )

    suite = load_suite(meta, registry)

    assert suite.format == "upskill"
    (case,) = suite.cases
    assert case.id == "case-1"
    assert case.context_files == (
        ("build.toml", '[general]\nname = "k"\n'),
        ("kernel.cu", "__global__ void k() {}"),
    )
    # The input first, then every context file as a fenced block named by its file.
    assert case.prompt == (
        "Fix the build file\n\n"
        'File `build.toml`:\n```\n[general]\nname = "k"\n```\n\n'
        "File `kernel.cu`:\n```\n__global__ void k() {}\n```"
    )
    assert case.verifiers == ({"type": "file_exists", "path": "build.toml"},)
    assert case.output_file == "build.toml"
    # upskill's contains: every listed string, ignoring case.
    assert registry.evaluate(case.check, "CAPABILITIES = 9.0").passed
    assert not registry.evaluate(case.check, "capabilities = 8.0").passed


# --- *.skill.yaml, native form ----------------------------------------------------------


def test_native_form(tmp_path: Path, registry: CheckRegistry) -> None:
    skills = tmp_path / "skills"
    skill_dir(skills)
    test_file = write(
        tmp_path / "tests" / "kernel.skill.yaml",
        r"""
        skill: ../skills/kernel-builder/SKILL.md
        defaults: {temperature: 0.2, max_tokens: 256}
        cases:
          - id: build-toml-h100
            input: Create a build.toml for a CUDA kernel targeting H100
            expect:
              contains: ["9.0"]
              regex: 'capabilities\s*=\s*\["9\.0"\]'
              not_contains: sm_80

          - input: Same for A100
            max_tokens: 64
            expected:
              contains: "8.0"
    """,
    )

    suite = load_suite(test_file, registry)

    assert suite.format == "native"
    assert suite.defaults == {"temperature": 0.2, "max_tokens": 256}
    assert suite.skill.path.resolve() == (skills / "kernel-builder" / "SKILL.md").resolve()
    first, second = suite.cases
    assert (first.id, second.id) == ("build-toml-h100", "case-2")
    assert (first.line, second.line) == (4, 11)
    # Several keys under expect: all must pass.
    assert first.check.kind == "all"
    assert [c.kind for c in first.check.value] == ["contains", "regex", "not_contains"]
    assert registry.evaluate(first.check, 'capabilities = ["9.0"]').passed
    assert not registry.evaluate(first.check, 'capabilities = ["9.0"] or sm_80').passed
    # `expected` is an alias of `expect`; a case may override sampling.
    assert second.check.kind == "contains"
    assert dict(second.sampling) == {"max_tokens": 64}
    assert dict(first.sampling) == {}


def test_native_skill_defaults_to_skill_md_beside_the_file(
    tmp_path: Path, registry: CheckRegistry
) -> None:
    directory = skill_dir(tmp_path)
    test_file = write(
        directory / "x.skill.yaml",
        """
        cases:
          - input: hi
            expect: {equals: hello}
    """,
    )
    suite = load_suite(test_file, registry)
    assert suite.skill.path == directory / "SKILL.md"
    assert suite.defaults == {}


def test_skill_may_name_a_directory(tmp_path: Path, registry: CheckRegistry) -> None:
    skill_dir(tmp_path / "skills")
    test_file = write(
        tmp_path / "x.skill.yaml",
        """
        skill: skills/kernel-builder
        cases:
          - input: hi
            expect: {equals: hello}
    """,
    )
    assert load_suite(test_file, registry).skill.name == "kernel-builder"


def test_integer_ids_become_strings(tmp_path: Path, registry: CheckRegistry) -> None:
    directory = skill_dir(tmp_path)
    test_file = write(
        directory / "x.skill.yaml",
        """
        cases:
          - id: 7
            input: hi
            expect: {contains: h}
    """,
    )
    assert load_suite(test_file, registry).cases[0].id == "7"


# --- errors the parser reports ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "cases:\n  - input: hi\n    expect: {contains: a}\n    expectd: {contains: b}\n",
            4,
            "unknown key 'expectd' in case 1; did you mean 'expected'?",
        ),
        ("cases:\n  - input: hi\n    expect: {shout: a}\n", 3, "unknown check kind 'shout'"),
        ("cases:\n  - input: hi\n    expect:\n      regex: '(['\n", 4, "bad regular expression"),
        (
            "cases:\n  - id: a\n    input: x\n    expect: {contains: a}\n"
            "  - id: a\n    input: y\n    expect: {contains: b}\n",
            5,
            "case id 'a' is used twice",
        ),
        (
            "skils: x\ncases:\n  - input: hi\n    expect: {contains: a}\n",
            1,
            "unknown key 'skils' in the top level; did you mean 'skill'?",
        ),
        (
            "case:\n  - input: hi\n    expect: {contains: a}\n",
            1,
            "unknown key 'case' in the top level; did you mean 'cases'?",
        ),
        ("cases:\n  - input: hi\n", 2, "needs an 'expect' mapping"),
        ("cases:\n  - expect: {contains: a}\n", 2, "non-empty 'input'"),
        ("cases:\n  - input: hi\n    expect: {}\n", 3, "expected a mapping of check kinds"),
        (
            "cases:\n  - input: hi\n    expect: {contains: a}\n    expected: {contains: b}\n",
            4,
            "either 'expect' or 'expected'",
        ),
        (
            "defaults: {temperature: hot}\ncases:\n  - input: hi\n    expect: {contains: a}\n",
            1,
            "temperature must be a number",
        ),
        (
            "cases:\n  - input: hi\n    expect: {contains: a}\n  - plain string\n",
            4,
            "case 2 must be a mapping",
        ),
        ("cases:\n  - input: [unclosed\n", 3, "invalid YAML"),
        (
            "cases:\n  - id: 'a::b'\n    input: hi\n    expect: {contains: a}\n",
            2,
            "'id' 'a::b' must not contain '::'",
        ),
        (
            "cases:\n  - id: ''\n    input: hi\n    expect: {contains: a}\n",
            2,
            "'id' must be a number or a non-empty string",
        ),
    ],
)
def test_errors_name_file_line_and_problem(
    tmp_path: Path, registry: CheckRegistry, text: str, line: int, fragment: str
) -> None:
    directory = skill_dir(tmp_path)
    test_file = directory / "x.skill.yaml"
    test_file.write_text(text, encoding="utf-8")
    with pytest.raises(FormatError) as info:
        load_suite(test_file, registry)
    error = info.value
    assert error.path == test_file
    assert error.line == line
    assert fragment in error.message
    assert str(error).startswith(f"{test_file}:{line}: ")


def test_invalid_json_names_the_line(tmp_path: Path, registry: CheckRegistry) -> None:
    meta = skill_dir(tmp_path) / "skill_meta.json"
    meta.write_text('{\n  "cases": [\n    {"input": "x",}\n  ]\n}\n')
    with pytest.raises(FormatError) as info:
        load_suite(meta, registry)
    assert info.value.line == 3
    assert "invalid JSON" in info.value.message


def test_missing_skill_md_is_an_error(tmp_path: Path, registry: CheckRegistry) -> None:
    test_file = write(
        tmp_path / "lonely" / "x.skill.yaml",
        """
        cases:
          - input: hi
            expect: {contains: a}
    """,
    )
    with pytest.raises(FormatError, match=r"no skill file at .*SKILL\.md"):
        load_suite(test_file, registry)


def test_json_without_cases_holds_no_cases(tmp_path: Path, registry: CheckRegistry) -> None:
    meta = skill_dir(tmp_path) / "skill_meta.json"
    meta.write_text('{"metadata": {}}')
    assert open_source(meta) is None
    with pytest.raises(FormatError, match="holds no skill test cases"):
        load_suite(meta, registry)


def test_a_bare_list_is_upskills_form(tmp_path: Path, registry: CheckRegistry) -> None:
    meta = skill_dir(tmp_path) / "skill_meta.json"
    meta.write_text('[{"input": "x"}]')
    with pytest.raises(FormatError, match="case 1 needs an 'expect' mapping"):
        load_suite(meta, registry)
    meta.write_text('[{"input": "x", "expected": {"contains": "x"}}]')
    assert load_suite(meta, registry).format == "upskill"


def test_context_files_must_map_names_to_text(tmp_path: Path, registry: CheckRegistry) -> None:
    meta = skill_dir(tmp_path) / "skill_meta.json"
    meta.write_text(
        json.dumps(
            {
                "tests": [
                    {
                        "input": "x",
                        "context": {"files": {"a.txt": 3}},
                        "expected": {"contains": "a"},
                    },
                ]
            }
        )
    )
    with pytest.raises(FormatError, match=r"'context\.files' must map file names"):
        load_suite(meta, registry)


# --- SKILL.md -------------------------------------------------------------------------


def test_skill_block_is_the_body_under_the_skill_name(tmp_path: Path) -> None:
    skill = load_skill(skill_dir(tmp_path) / "SKILL.md")
    assert skill.name == "kernel-builder"
    assert skill.description == "Builds CUDA kernels with the right build.toml."
    assert skill.warnings == ()
    assert "---" not in skill.body and "description:" not in skill.body
    assert skill.block == (
        '# Skill: kernel-builder\n\n# How to build\n\nTarget H100 with capabilities = ["9.0"].\n'
    )


@pytest.mark.parametrize(
    ("front_matter", "directory", "warning", "name"),
    [
        (
            "name: Kernel_Builder\ndescription: d",
            "Kernel_Builder",
            "breaks the Agent Skills rule",
            "Kernel_Builder",
        ),
        (
            "name: double--hyphen\ndescription: d",
            "double--hyphen",
            "breaks the Agent Skills rule",
            "double--hyphen",
        ),
        (f"name: {'a' * 65}\ndescription: d", "long", "breaks the Agent Skills rule", "a" * 65),
        ("name: kernel-builder", "kernel-builder", "no 'description'", "kernel-builder"),
        (
            "name: other-name\ndescription: d",
            "kernel-builder",
            "differs from its directory",
            "other-name",
        ),
        ("description: d", "from-dir", "no 'name'", "from-dir"),
        (f"name: long-desc\ndescription: {'x' * 1025}", "long-desc", "limit is 1024", "long-desc"),
        ("name: [unclosed\n", "broken", "not usable YAML", "broken"),
    ],
)
def test_front_matter_problems_are_warnings(
    tmp_path: Path, front_matter: str, directory: str, warning: str, name: str
) -> None:
    path = skill_dir(tmp_path, directory, f"---\n{front_matter}\n---\nThe body.\n") / "SKILL.md"
    skill = load_skill(path)  # never raises
    assert any(warning in text for text in skill.warnings), skill.warnings
    assert skill.name == name
    assert skill.body.strip() == "The body."
    assert skill.block.startswith(f"# Skill: {name}\n\nThe body.")


def test_no_front_matter_warns_and_keeps_the_whole_text(tmp_path: Path) -> None:
    skill = load_skill(skill_dir(tmp_path, "plain", "Just guidance.\n") / "SKILL.md")
    assert any("no front matter" in w for w in skill.warnings)
    assert skill.name == "plain"
    assert skill.block == "# Skill: plain\n\nJust guidance.\n"


def test_front_matter_warnings_do_not_stop_a_suite(tmp_path: Path, registry: CheckRegistry) -> None:
    directory = skill_dir(tmp_path, "demo", "---\nname: Bad Name\n---\nBody.\n")
    test_file = write(
        directory / "x.skill.yaml",
        """
        cases:
          - input: hi
            expect: {contains: a}
    """,
    )
    suite = load_suite(test_file, registry)
    assert len(suite.cases) == 1
    assert len(suite.skill.warnings) == 2  # bad name, no description


def test_byte_order_marks_are_ignored(tmp_path: Path, registry: CheckRegistry) -> None:
    # Editors on Windows write one; it must not hide the front matter or break JSON.
    directory = skill_dir(tmp_path)
    (directory / "SKILL.md").write_bytes(b"\xef\xbb\xbf" + SKILL_MD.encode())
    meta = directory / "skill_meta.json"
    body = json.dumps({"cases": [{"input": "x", "expected": {"contains": "x"}}]})
    meta.write_bytes(b"\xef\xbb\xbf" + body.encode())
    suite = load_suite(meta, registry)
    assert suite.skill.name == "kernel-builder"
    assert suite.skill.warnings == ()
    assert suite.skill.block.startswith("# Skill: kernel-builder\n\n# How to build")
