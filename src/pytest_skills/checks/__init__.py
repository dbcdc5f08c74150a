"""Checking answers: a case's ``expect`` as a :class:`Check` tree, kinds in a registry.

The tree is built at collection time (a bad regex or an unknown kind is a collection
error) and evaluated at run time into a :class:`CheckResult` tree that says which
check failed, what it wanted and what it saw. No pytest import.
"""

from pytest_skills.checks.builtin import register_builtin_checks
from pytest_skills.checks.registry import (
    COMBINATORS,
    Check,
    CheckError,
    CheckRegistry,
    CheckResult,
    CheckSpecError,
)

__all__ = [
    "COMBINATORS",
    "Check",
    "CheckError",
    "CheckRegistry",
    "CheckResult",
    "CheckSpecError",
    "register_builtin_checks",
]
