"""What the run hands to the nodes and the fixture when they are made.

Nodes never look the run up: a :class:`SkillFile` is created with a :class:`RunContext`
and passes it on to its items, so data flows one way (run -> nodes -> records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_skills.checks import CheckRegistry
from pytest_skills.execution.runner import Call, Outcome

if TYPE_CHECKING:
    import pluggy

    from pytest_skills.settings import Settings


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    #: The answer to one call: from the cache, or the model, or an error (waits for it).
    ask: Callable[[Call], Outcome]
    #: ``text`` without the values of secret variables, for every report.
    redact: Callable[[str], str]
    #: The check kinds known where a file lives (its conftests' kinds included).
    registry_for: Callable[[pluggy.HookRelay], CheckRegistry]
    #: The kinds plugins and the initial conftests registered (for the fixture).
    registry: CheckRegistry
