"""The public API: what ``pytest_skills`` exports, ``py.typed``, and one error base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest_skills

#: Run as a script of its own (``python -I -S``), so it imports nothing of the package.
STANDALONE = {"pytest_skills.checks.reaper"}


def _modules() -> list[str]:
    root = Path(pytest_skills.__file__).parent
    found = [
        info.name
        for info in pkgutil.walk_packages([str(root)], prefix="pytest_skills.")
        if info.name not in STANDALONE
    ]
    return sorted(found)


def test_every_exported_name_is_there_and_version_is_set() -> None:
    assert pytest_skills.__version__ and pytest_skills.__version__ != "0+unknown"
    for name in pytest_skills.__all__:
        assert getattr(pytest_skills, name) is not None, name
    assert "SkillModel" in pytest_skills.__all__ and "SkillsError" in pytest_skills.__all__


def test_the_package_is_typed() -> None:
    assert (Path(pytest_skills.__file__).parent / "py.typed").is_file()


def test_every_exception_derives_from_skills_error_and_says_error() -> None:
    wrong = []
    for name in _modules():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                if not issubclass(value, pytest_skills.SkillsError):
                    wrong.append(f"{name}.{attribute}: not a SkillsError")
                if not attribute.endswith("Error"):
                    wrong.append(f"{name}.{attribute}: its name does not end in Error")
    assert wrong == []


def test_importing_the_package_loads_no_heavy_module() -> None:
    code = (
        "import sys, pytest_skills\n"
        "print(sorted(m for m in sys.modules if m.startswith('pytest_skills.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
