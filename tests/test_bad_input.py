"""Bad test files and bad options: one clear error naming the file and line, never a traceback."""

from __future__ import annotations

import json

import anthropic  # noqa: F401  (imported once, not in every in-process run)
import pytest

from tests.conftest import HAIKU, SKILL_MD, write_skill
from tests.conftest import output as everything

pytestmark = pytest.mark.usefixtures("provider_env")

GOOD_CASE = "  - input: hi\n    expect: {contains: hi}\n"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--skill-model", HAIKU, "-p", "no:cacheprovider", "--skill-cache=off", *args
    )


def write_file(
    pytester: pytest.Pytester, name: str, content: str | bytes, *, skill: bool = True
) -> None:
    directory = pytester.path / "demo"
    directory.mkdir(exist_ok=True)
    if skill:
        (directory / "SKILL.md").write_text(SKILL_MD.format(name="demo", marker="demo"))
    target = directory / name
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")


BAD_FILES = [
    pytest.param(
        "skill_meta.json",
        '{\n  "cases": [\n    {"input": "x",}\n  ]\n}\n',
        "skill_meta.json:3: invalid JSON: Expecting property name*",
        id="invalid-json",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: [unclosed\n    expect: {}\n",
        "demo.skill.yaml:3: invalid YAML: *",
        id="invalid-yaml",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n\t- input: x\n",
        "demo.skill.yaml:2: invalid YAML: *",
        id="yaml-tab",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n" + GOOD_CASE + "defualts: {temperature: 0}\n",
        "demo.skill.yaml:4: unknown key 'defualts' in the top level; did you mean 'defaults'?",
        id="near-miss-top-level-key",
    ),
    pytest.param(
        "skill_meta.json",
        json.dumps(
            {"tests": [{"input": "x", "expected": {"contains": "a"}}], "cases": []}, indent=2
        ),
        "skill_meta.json:10: give either 'tests' or 'cases', not both",
        id="tests-and-cases",
    ),
    pytest.param(
        "skill_meta.json",
        json.dumps({"test": [{"input": "x", "expected": {"contains": "a"}}]}, indent=2),
        "skill_meta.json:2: unknown key 'test' in the top level; did you mean 'tests'?",
        id="near-miss-of-the-case-list",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n" + GOOD_CASE + "    expcet: {contains: x}\n",
        "demo.skill.yaml:4: unknown key 'expcet' in case 1; did you mean 'expect'?",
        id="near-miss-case-key",
    ),
    pytest.param(
        "skill_meta.json",
        json.dumps({"tests": [{"input": "x", "expectd": {"contains": "a"}}]}, indent=2),
        "skill_meta.json:5: unknown key 'expectd' in case 1; did you mean 'expected'?",
        id="near-miss-upskill-key",
    ),
    pytest.param(
        "skill_meta.json",
        json.dumps({"input": "x", "expected": {"contains": "a"}}, indent=2),
        "skill_meta.json:3: 'expected' at the top level: a case's checks belong in a case, "
        "in a 'tests' or 'cases' list",
        id="one-case-without-a-list",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    expect:\n      contain: x\n",
        "demo.skill.yaml:4: unknown check kind 'contain'; known kinds: all, any, *",
        id="unknown-check-kind",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    expect:\n      any:\n"
        "        - contains: a\n        - shout: b\n",
        "demo.skill.yaml:6: unknown check kind 'shout'*",
        id="unknown-nested-kind",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n    expect:\n      regex: '(['\n",
        "demo.skill.yaml:4: regex: bad regular expression '([': *",
        id="bad-regex",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - id: same\n    input: a\n    expect: {contains: a}\n"
        "  - id: same\n    input: b\n    expect: {contains: b}\n",
        "demo.skill.yaml:5: case id 'same' is used twice (cases 1 and 2)",
        id="duplicate-ids",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n  - input: hi\n",
        "demo.skill.yaml:2: case 1 needs an 'expect' mapping of checks",
        id="no-expect",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases:\n" + GOOD_CASE + "  - input: ''\n    expect: {}\n",
        "demo.skill.yaml:4: case 2 needs a non-empty 'input' string",
        id="empty-input",
    ),
    pytest.param(
        "demo.skill.yaml",
        "skill: missing/SKILL.md\ncases:\n" + GOOD_CASE,
        "demo.skill.yaml:1: no skill file at */missing/SKILL.md; *",
        id="skill-missing",
    ),
    pytest.param(
        "demo.skill.yaml",
        "defaults: {max_tokens: -5}\ncases:\n" + GOOD_CASE,
        "demo.skill.yaml:1: max_tokens must be a number (max_tokens a positive integer)",
        id="bad-defaults",
    ),
    pytest.param(
        "demo.skill.yaml",
        "cases: !!python/object/apply:os.system ['exit 1']\n",
        "demo.skill.yaml:1: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'",
        id="unsafe-yaml-tag",
    ),
    pytest.param(
        "demo.skill.yaml",
        b"cases:\n  - input: caf\xe9\n",
        "demo.skill.yaml: cannot read the file: 'utf-8' codec can't decode*",
        id="not-utf8",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES)
def test_bad_file_is_one_clear_collection_error(
    pytester: pytest.Pytester, name: str, content: str | bytes, message: str
) -> None:
    write_file(pytester, name, content)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*ERROR collecting demo/{name}*",
            f"{pytester.path}/demo/{message}",
            f"ERROR demo/{name}",
        ]
    )
    assert "Traceback" not in everything(result)
    assert "FormatError" not in everything(result)


def test_missing_skill_md_beside_the_file(pytester: pytest.Pytester) -> None:
    write_file(
        pytester,
        "skill_meta.json",
        json.dumps({"cases": [{"input": "x", "expected": {"contains": "x"}}]}),
        skill=False,
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"{pytester.path}/demo/skill_meta.json: no skill file at "
            f"{pytester.path}/demo/SKILL.md; "
            "put a SKILL.md beside this file or name it with 'skill: path/to/SKILL.md'",
        ]
    )
    assert "Traceback" not in everything(result)


def test_bad_file_errors_even_without_a_model(pytester: pytest.Pytester) -> None:
    write_file(pytester, "demo.skill.yaml", "cases:\n  - input: hi\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*demo.skill.yaml:2: case 1 needs an 'expect' mapping*"])


def test_good_file_still_runs_beside_a_bad_one(
    pytester: pytest.Pytester, provider_env: object
) -> None:
    write_skill(pytester.path, "good")
    write_file(pytester, "demo.skill.yaml", "cases:\n  - input: hi\n    expect: {shout: x}\n")
    result = run(pytester, "--continue-on-collection-errors", "-v")
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            f"good/good.skill.yaml::echoes[[]{HAIKU}[]] PASSED*",
            f"good/good.skill.yaml::mentions-skill[[]{HAIKU}[]] PASSED*",
            "*demo/demo.skill.yaml:3: unknown check kind 'shout'*",
        ]
    )
    assert "Traceback" not in everything(result)


def test_without_continue_nothing_runs(pytester: pytest.Pytester) -> None:
    write_skill(pytester.path, "good")
    write_file(pytester, "demo.skill.yaml", "cases:\n  - input: hi\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)


def test_front_matter_problems_warn_and_run(pytester: pytest.Pytester) -> None:
    directory = write_skill(pytester.path, "demo")
    (directory / "SKILL.md").write_text("---\nname: Not_Valid\n---\nMention demo.\n")
    result = run(pytester, "-W", "default")
    result.assert_outcomes(passed=1, failed=1, warnings=2)
    result.stdout.fnmatch_lines_random(
        [
            "*SKILL.md:1: PytestWarning: name 'Not_Valid' breaks the Agent Skills rule*",
            "*SKILL.md:1: PytestWarning: front matter has no 'description'*",
        ]
    )
    # The skill block carries the declared name; `mentions-skill` wanted "skill: demo".
    result.stdout.fnmatch_lines(["*echo: Tell me about the topic | skill: # Skill: Not_Valid"])


# --- bad options: usage errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--skill-model", "nonsense"),
            "ERROR: pytest-skills: unknown model 'nonsense': use provider:name "
            "(anthropic:, openai:, gguf:, hf:) or one of the aliases: *haiku*",
        ),
        (("--skill-model", "openai:"), "ERROR: pytest-skills: unknown model 'openai:'*"),
        (
            ("--skill-model", "openai:@http://x"),
            "ERROR: pytest-skills: model spec 'openai:@http://x' names no model after 'openai:'",
        ),
        (
            ("--skill-model", "openai:qwen@127.0.0.1:8080/v1"),
            "ERROR: pytest-skills: model spec 'openai:qwen@127.0.0.1:8080/v1': base URL "
            "'127.0.0.1:8080/v1' must start with http:// or https://",
        ),
        (
            ("--skill-model", "openai:qwen@https://me:sk-live-123@example.test/v1"),
            "ERROR: pytest-skills: model spec 'openai:qwen@...': its base URL carries "
            "credentials*put the key in the provider's environment variable*",
        ),
        (
            ("--skill-model", "openai:qwen@https://example.test/v1?api_key=sk-live-123"),
            "ERROR: pytest-skills: model spec 'openai:qwen@...': its base URL carries*",
        ),
        (("--skill-model", " "), "ERROR: pytest-skills: empty model spec*"),
        (
            ("--skill-model", "haiku", "--skill-model", "haiku"),
            "ERROR: --skill-model named twice: haiku",
        ),
        (
            ("--skill-model", "haiku", "--skill-concurrency", "0"),
            "ERROR: --skill-concurrency: must be at least 1, got 0",
        ),
        (
            ("--skill-model", "haiku", "--skill-trials", "0"),
            "ERROR: --skill-trials: must be at least 1, got 0",
        ),
        (
            ("--skill-model", "haiku", "--skill-pass-threshold", "1.5"),
            "ERROR: --skill-pass-threshold: expected a fraction in (0, 1]",
        ),
        (
            ("--skill-model", "haiku", "--skill-min-lift", "lots"),
            "ERROR: --skill-min-lift: 'lots': expected points, e.g. 10 or 10:ci",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    write_skill(pytester.path)
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in everything(result)
    assert "sk-live-123" not in everything(result)  # a key in a base URL is never echoed


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("skill_models = nonsense\n", "ERROR: pytest-skills: unknown model 'nonsense'*"),
        (
            "skill_models = fast\nskill_model_aliases =\n    fast = nowhere\n",
            "ERROR: pytest-skills: unknown model 'fast'*",
        ),
        (
            "skill_models = a\nskill_model_aliases =\n    a = b\n    b = a\n",
            "ERROR: pytest-skills: model alias loop: a -> b -> a",
        ),
        (
            "skill_model_aliases =\n    just-a-name\n",
            "ERROR: pytest-skills: skill_model_aliases: cannot read 'just-a-name'; "
            "write one 'alias = spec' per line",
        ),
        (
            "skill_cache = sometimes\n",
            "ERROR: ini skill_cache: 'sometimes': choose one of auto, replay, refresh, off",
        ),
        ("skill_trials = many\n", "ERROR: ini skill_trials: expected a whole number, got 'many'"),
    ],
)
def test_bad_ini_values_are_usage_errors(pytester: pytest.Pytester, ini: str, message: str) -> None:
    pytester.makeini("[pytest]\n" + ini)
    write_skill(pytester.path)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in everything(result)
