"""The base of every error pytest-skills raises (no pytest import)."""

from __future__ import annotations


class SkillsError(Exception):
    """Base class of pytest-skills' errors: ``except pytest_skills.SkillsError`` catches
    any of them (a bad file, a model that cannot be called, a cache that cannot be read)."""
