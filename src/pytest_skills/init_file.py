"""``pytest --skill-init [DIR]``: a commented starter ``*.skill.yaml`` beside a SKILL.md.

The starter holds one case per check kind worth showing, each with a comment saying
what it checks, so a first skill test is an edit rather than a blank page. It never
overwrites a file: a second run says where the first one wrote.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_skills.errors import SkillsError
from pytest_skills.formats.data import FormatError
from pytest_skills.formats.skill_md import NAME_RULE, load_skill

STARTER = """\
# Skill tests for {name}, written by `pytest --skill-init`.
#
# Every case runs on every model you name, once with the skill (SKILL.md as the system
# prompt) and once without it (the baseline); the summary shows how much the skill lifts
# the pass rate. The test passes or fails on the with-skill answer.
#
#   pytest {display} --skill-model=haiku          # or gemma3-270m, openai:gpt-4.1-mini, ...
#
# Answers are cached in .skill-cache/ (commit it: CI replays them with no key).
# Replace each input with a question your skill should change the answer to.
# Every check kind is described on the Checks page of pytest-skills' documentation.

skill: SKILL.md              # the skill under test, relative to this file
defaults:
  temperature: 0             # greedy answers: replays and reruns agree
  max_tokens: 1024

cases:
  # contains: every listed string appears in the answer, ignoring case.
  - id: names-the-convention
    input: "TODO: a question whose answer the skill teaches"
    expect:
      contains: ["TODO: a word the answer must use"]

  # not_contains: none of the listed strings appears (the mistake the skill prevents).
  - id: avoids-the-old-way
    input: "TODO: a question a model without the skill gets wrong"
    expect:
      not_contains: ["TODO: the wrong answer"]

  # regex: Python's re.search finds the pattern; (?i) makes it ignore case.
  - id: gives-the-exact-form
    input: "TODO: ask for something with a precise shape"
    expect:
      regex: '(?i)version\\s*=\\s*"\\d+\\.\\d+"'

  # any / all: combine checks; several keys under expect must all pass.
  - id: either-spelling
    input: "TODO: a question with two acceptable answers"
    expect:
      any:
        - contains: "TODO: one acceptable answer"
        - contains: "TODO: the other"
      min_lines: 1

  # json: the answer (or its single code fence) parses as JSON.
  - id: answers-in-json
    input: "TODO: ask for a JSON answer"
    expect:
      json: true

  # judge: a model grades the answer on a rubric; run with --skill-judge-model=sonnet.
  # Without a judge model this case is skipped with a reason.
  - id: explains-why
    input: "TODO: a question that needs an explanation"
    expect:
      judge: "TODO: the answer explains ... (what a good answer does)"

  # xfail: a case you know fails today still counts in the rates; its test is xfailed.
  - id: known-hard
    input: "TODO: a question the skill does not yet fix"
    xfail: "TODO: why it fails today"
    expect:
      contains: "TODO"
"""


class InitError(SkillsError):
    """The starter could not be written; the message says why and what to do."""


@dataclass(frozen=True)
class Written:
    path: Path
    skill_name: str


def _skill_md(target: Path) -> Path:
    if target.is_file() and target.name == "SKILL.md":
        return target
    if target.is_dir():
        candidate = target / "SKILL.md"
        if candidate.is_file():
            return candidate
        raise InitError(
            f"no SKILL.md in {target}: give the directory of a skill, "
            "e.g. pytest --skill-init=skills/my-skill"
        )
    raise InitError(f"{target} is not a directory: give the directory of a skill's SKILL.md")


def _file_name(skill_md: Path) -> tuple[str, str]:
    """The starter's file name, from the skill's name (else its directory's)."""
    try:
        name = load_skill(skill_md).name
    except FormatError as error:
        raise InitError(str(error)) from None
    if not NAME_RULE.match(name):  # front matter that breaks the rules: its directory's name
        name = skill_md.parent.name if NAME_RULE.match(skill_md.parent.name) else "skill"
    return f"{name}.skill.yaml", name


def write_starter(target: Path, invocation_dir: Path) -> Written:
    """Write the starter beside ``target``'s SKILL.md; refuse to overwrite anything."""
    skill_md = _skill_md(target)
    file_name, name = _file_name(skill_md)
    path = skill_md.parent / file_name
    try:
        display = str(path.relative_to(invocation_dir))
    except ValueError:
        display = str(path)
    try:
        with path.open("x", encoding="utf-8") as out:  # "x": never overwrite
            out.write(STARTER.format(name=name, display=display))
    except FileExistsError:
        raise InitError(
            f"{path} exists: not overwritten (move it away to write a fresh starter)"
        ) from None
    except OSError as error:
        raise InitError(f"cannot write {path}: {error.strerror or error}") from None
    return Written(path, name)


def init_command(config: pytest.Config) -> int:
    """``--skill-init``: write the starter, say where, exit (a usage error if refused)."""
    invocation_dir = config.invocation_params.dir
    target = invocation_dir / config.option.skill_init
    try:
        written = write_starter(target, invocation_dir)
    except InitError as error:
        print(f"pytest-skills: {error}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    print(f"skills: wrote {written.path} (starter cases for {written.skill_name}; edit the TODOs)")
    return 0
