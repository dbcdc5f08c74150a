"""What the run hands to the nodes and the fixture when they are made.

Nodes never look the run up: a :class:`SkillFile` is created with a :class:`RunContext`
and passes it on to its items, so data flows one way (run -> nodes -> records).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_skills.checks import CheckRegistry
from pytest_skills.checks.judge import JudgeCheck, register_judge_check
from pytest_skills.checks.sandbox import SandboxPolicy
from pytest_skills.checks.verify import use_sandbox_policy

if TYPE_CHECKING:
    import pytest

    from pytest_skills.arms import ArmPrompts
    from pytest_skills.execution.calls import CallService
    from pytest_skills.execution.secrets import Redactor
    from pytest_skills.settings import Settings


@dataclass(eq=False)
class Registries:
    """The check kinds known in each directory: the plugins', its conftests' and the
    judge. Skill files and ``skill_model`` tests in one directory share one registry."""

    judge: JudgeCheck
    #: Where upskill's command verifiers run (handed to the built-in ``verify`` kind).
    sandbox: SandboxPolicy
    _by_directory: dict[Path, CheckRegistry] = field(default_factory=dict)

    def for_node(self, node: pytest.Item | pytest.Collector) -> CheckRegistry:
        directory = node.path.parent
        registry = self._by_directory.get(directory)
        if registry is None:
            registry = CheckRegistry()
            # The node's hook relay holds the conftests of its directory and above.
            node.ihook.pytest_skills_register_checks(registry=registry)
            register_judge_check(registry, self.judge)
            use_sandbox_policy(registry, self.sandbox)
            self._by_directory[directory] = registry
        return registry


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    #: Answers calls through the cache and the backends (waiting, or ahead of time).
    calls: CallService
    #: Takes secret values out of every text a report shows.
    redact: Redactor
    registries: Registries
    judge: JudgeCheck
    #: The system prompt each arm sends for a suite.
    arm_prompts: ArmPrompts
