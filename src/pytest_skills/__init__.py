"""pytest-skills: test agent skills (SKILL.md) with pytest.

What users and plugin authors need is exported here: the ``skill_model`` fixture's
types, the check results and registry (for ``pytest_skills_register_checks``), the
request/response types and the backend protocol (for ``pytest_skills_make_backend``),
and the base of every error the plugin raises.
"""

from __future__ import annotations

from importlib import metadata

from pytest_skills.backends.base import Backend, BackendError, BackendOptions
from pytest_skills.checks.registry import Check, CheckError, CheckRegistry, CheckResult
from pytest_skills.errors import SkillsError
from pytest_skills.fixture import Answer, SkillModel
from pytest_skills.models import ErrorKind, ModelSpec, Request, Response, Usage


def __getattr__(name: str) -> str:
    # Read when asked for: the package metadata lookup is not free, and pytest imports
    # this package on every run of a project that installs it.
    if name == "__version__":
        try:
            return metadata.version("pytest-skills")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
