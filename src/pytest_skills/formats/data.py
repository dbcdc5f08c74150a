"""What a skill test file holds once read: a :class:`Suite` of :class:`Case` objects.

Frozen data with line numbers, shared by every format; no pytest import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_skills.checks import Check
from pytest_skills.errors import SkillsError

#: A key path into a file's data, e.g. ``("cases", 0, "expect")``.
KeyPath = tuple[str | int, ...]


def user_message(text: str, files: tuple[tuple[str, str], ...]) -> str:
    """The user message: the text, then every file as a fenced block named by its file
    (the layout of a case's context files)."""
    parts = [text.rstrip()]
    for name, content in files:
        parts.append(f"File `{name}`:\n```\n{content.rstrip()}\n```")
    return "\n\n".join(parts)


def plain(value: Any) -> Any:
    """``value`` as JSON data (YAML dates become text), so metadata survives the report."""
    return json.loads(json.dumps(value, default=str))


class FormatError(SkillsError):
    """A test file that cannot be used. ``str()`` reads ``path:line: what is wrong``."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    body: str
    path: Path
    warnings: tuple[str, ...] = ()

    @cached_property  # one string per skill, however many requests carry it
    def block(self) -> str:
        """The text injected as the system prompt: the body under the skill's name."""
        return f"# Skill: {self.name}\n\n{self.body.strip()}\n"


@dataclass(frozen=True)
class Case:
    id: str
    input: str
    #: What grades the answer; ``None`` only with ``skip`` set.
    check: Check | None
    context_files: tuple[tuple[str, str], ...] = ()
    sampling: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None
    #: upskill's ``verifiers`` and ``output_file``, kept verbatim.
    verifiers: tuple[Mapping[str, Any], ...] = ()
    output_file: str | None = None
    #: A known failure: the reason why. The item is marked xfail (not strict).
    xfail: str | None = None
    #: Why the case cannot be graded here (e.g. upskill names a validator no plugin
    #: registered): its items are collected and skipped with this reason.
    skip: str | None = None
    #: Keys of the case that pytest-skills does not use, as JSON data (in the report).
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The user message: the input, then every context file as a fenced block."""
        return user_message(self.input, self.context_files)


@dataclass(frozen=True)
class Suite:
    #: The file the cases are read from.
    path: Path
    format: str
    #: Injected in this order (an upskill scenario may list several).
    skills: tuple[Skill, ...]
    cases: tuple[Case, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: Problems worth telling that do not stop the file (one line each).
    warnings: tuple[str, ...] = ()
    #: Top-level keys that pytest-skills does not use, as JSON data (in the report).
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def skill(self) -> Skill:
        """The first skill (the only one, except in upskill scenarios)."""
        return self.skills[0]

    @property
    def skill_name(self) -> str:
        return "+".join(skill.name for skill in self.skills)

    @property
    def system_prompt(self) -> str:
        """Every skill's block, in order: the with-skill system prompt."""
        return "\n".join(skill.block for skill in self.skills)
