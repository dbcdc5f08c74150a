"""Whose file a broken look-alike is: ours, or another tool's that shares the name.

Names like ``*.skill.yaml`` and ``skill_meta.json`` are used by other tools too
(CommandMate's package manifests, SmartPerfetto's analysis skills, ...), and their
files need not be valid YAML for PyYAML. A file that cannot be read is a collection
error only when it could be a skill test file: when its text names, as a key, where a
test file keeps its cases or what a case asks (``cases``, ``tests``, ``evals``,
``input``, ``prompt``, ...; a list key's near miss counts too, ``case:``). A file whose
text shows no such key is another tool's: a warning, not collected. Pure code.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from pytest_skills.formats.data import FormatError
from pytest_skills.formats.keys import near_miss
from pytest_skills.formats.loading import MAX_FILE_BYTES

#: A key as YAML (block or flow, quoted or not) and JSON write it.
_KEY = re.compile(r"""(?:^|[{,])[ \t]*(?:-[ \t]+)?["']?([A-Za-z_][\w-]*)["']?[ \t]*:""", re.M)


class ForeignFileError(FormatError):
    """A file named like a skill test file that cannot be read and shows no sign of
    cases: another tool's. Collection warns about it and goes on."""


def shows_cases(text: str, list_keys: Collection[str], case_keys: Collection[str]) -> bool:
    """Whether ``text`` names a key where test cases live, or a case's own key."""
    for key in set(_KEY.findall(text)):
        if key in case_keys or key in list_keys or near_miss(key, list_keys):
            return True
    return False


def foreign(
    path: Path, error: FormatError, list_keys: Collection[str], case_keys: Collection[str]
) -> ForeignFileError | None:
    """``error`` as a :class:`ForeignFileError` when ``path`` shows no sign of cases; None
    when it may be a skill test file (or cannot be looked at: too large, unreadable)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        text = path.read_bytes().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    if shows_cases(text, list_keys, case_keys):
        return None
    keys = ", ".join(sorted({*list_keys, *case_keys}))
    return ForeignFileError(
        path,
        f"not collected: {error.message}, and it names none of the keys a skill test file "
        f"has ({keys}), so it is taken for another tool's file. If it is a skill test "
        "file, fix it and it is collected",
        error.line,
    )
