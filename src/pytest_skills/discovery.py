"""Which files are skill test files, by name alone.

pytest asks about every file it walks past, in every project that installs the plugin,
so this module imports nothing heavy: reading a file is for ``formats``, which loads
only once a file is named like one of ours.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from pathlib import Path

#: Native test files.
NATIVE_SUFFIXES = (".skill.yaml", ".skill.yml")
#: The article and upskill forms.
SKILL_META_NAME = "skill_meta.json"
#: upskill keeps its scenario manifest here (a dot-directory pytest would skip).
MANIFEST_DIR = ".upskill"


def is_native_file(path: Path) -> bool:
    return path.name.endswith(NATIVE_SUFFIXES)


def is_skill_meta_file(path: Path) -> bool:
    return path.name == SKILL_META_NAME


def is_evals_file(path: Path) -> bool:
    """An Agent Skills ``evals/evals.json``."""
    return path.name == "evals.json" and path.parent.name == "evals"


def is_manifest_file(path: Path) -> bool:
    """upskill's ``.upskill/evals.json``."""
    return path.name == "evals.json" and path.parent.name == MANIFEST_DIR


#: Trigger-eval files (``should_trigger`` queries), in ``evals/``: the names found in the wild.
TRIGGER_FILE_NAME = re.compile(r"(?:trigger[-_]?evals?|trigger[-_]queries|eval[-_]queries)\.json")


def is_trigger_file(path: Path) -> bool:
    """Named like a trigger-eval file, in ``evals/``."""
    return path.parent.name == "evals" and TRIGGER_FILE_NAME.fullmatch(path.name) is not None


def is_skill_test_file(path: Path) -> bool:
    """Named like a skill test file (whether it holds cases is for ``formats``)."""
    return (
        is_native_file(path)
        or is_skill_meta_file(path)
        or is_evals_file(path)
        or is_manifest_file(path)
    )


def is_scenario_dir(path: Path) -> bool:
    """upskill's ``.upskill/`` holding a scenario manifest."""
    return path.name == MANIFEST_DIR and (path / "evals.json").is_file()


def user_ignored(path: Path, ignored: Iterable[str], globs: Iterable[str]) -> bool:
    """``path`` is named by --ignore or --ignore-glob."""
    paths = [Path(os.path.abspath(p)) for p in ignored]
    patterns = [os.path.abspath(p) for p in globs]
    return path in paths or any(fnmatch.fnmatch(str(path), glob) for glob in patterns)
