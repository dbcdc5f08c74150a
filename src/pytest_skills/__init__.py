"""pytest-skills: test agent skills (SKILL.md) with pytest.

What users and plugin authors need is exported here: the ``skill_model`` fixture's
types, the check results and registry (for ``pytest_skills_register_checks``), the
request/response types and the backend protocol (for ``pytest_skills_make_backend``),
and the base of every error the plugin raises.

The names load when first used: pytest imports this package in every run of a project
that installs the plugin, skill tests or not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_skills.backends.base import Backend, BackendError, BackendOptions
    from pytest_skills.checks.registry import Check, CheckError, CheckRegistry, CheckResult
    from pytest_skills.errors import SkillsError
    from pytest_skills.fixture import Answer, SkillModel
    from pytest_skills.models import ErrorKind, ModelSpec, Request, Response, Usage

_WHERE = {
    "Answer": "pytest_skills.fixture",
    "Backend": "pytest_skills.backends.base",
    "BackendError": "pytest_skills.backends.base",
    "BackendOptions": "pytest_skills.backends.base",
    "Check": "pytest_skills.checks.registry",
    "CheckError": "pytest_skills.checks.registry",
    "CheckRegistry": "pytest_skills.checks.registry",
    "CheckResult": "pytest_skills.checks.registry",
    "ErrorKind": "pytest_skills.models",
    "ModelSpec": "pytest_skills.models",
    "Request": "pytest_skills.models",
    "Response": "pytest_skills.models",
    "SkillModel": "pytest_skills.fixture",
    "SkillsError": "pytest_skills.errors",
    "Usage": "pytest_skills.models",
}

__all__ = [
    "Answer",
    "Backend",
    "BackendError",
    "BackendOptions",
    "Check",
    "CheckError",
    "CheckRegistry",
    "CheckResult",
    "ErrorKind",
    "ModelSpec",
    "Request",
    "Response",
    "SkillModel",
    "SkillsError",
    "Usage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("pytest-skills")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
