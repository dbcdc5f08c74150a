"""Helpers shared by the plugin's end-to-end tests (pytester against the loopback provider)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The SDKs and backends are imported up front: pytester's in-process runs drop modules
# first imported during a run, and re-importing the SDKs costs over a second per run.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest

import pytest_skills.backends.anthropic
import pytest_skills.backends.openai  # noqa: F401
from tests.conftest import HAIKU

SKILL_BLOCK = "# Skill: demo\n\nWhen asked anything, mention the word demo.\n"
#: The node id suffix `[anthropic:claude-haiku-4-5]`, escaped for fnmatch patterns.
ID = f"[[]{HAIKU}[]]"
#: The loopback names the skill in its answer only when it was given one, so
#: `mentions-skill` passes with the skill and fails without; `echoes` passes both.
ROW = r"anthropic:claude-haiku-4-5\s+2\s+2/2\s+100%\s+1/2\s+50%\s+\+50pp\s+"


def run(pytester: pytest.Pytester, *args: str, model: str | None = HAIKU) -> pytest.RunResult:
    model_args = ("--skill-model", model) if model else ()
    return pytester.runpytest(*model_args, "-p", "no:cacheprovider", "--skill-cache=off", *args)


def read_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
