"""``SKILL.md``: front matter checked against the Agent Skills rules, and the body.

Front matter problems are warnings, never errors: a skill that reads oddly can still
be tested. A skill is read through ``files.py`` (confined to the project, bounded, a
regular file) and made once per version of the file, however many test files,
scenarios or cases name it: they share one :class:`Skill`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_skills.formats.data import FormatError, Skill
from pytest_skills.formats.files import FileKey, read_keyed
from pytest_skills.formats.loading import DataError, load_yaml

NAME_RULE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


#: Skills in use, by the version of the file read: a file named again, by any path or
#: link, is the same Skill (with the path it was first named by).
_skills: weakref.WeakValueDictionary[FileKey, Skill] = weakref.WeakValueDictionary()


def load_skill(path: Path) -> Skill:
    """Read a SKILL.md; front matter problems become warnings, never errors."""
    try:
        text, key = read_keyed(path, "skill")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise FormatError(path, f"cannot read the skill: {error}") from None
    skill = _skills.get(key)
    if skill is None:
        skill = _skills[key] = parse_skill(text, path)
    return skill


def parse_skill(text: str, path: Path) -> Skill:
    """A SKILL.md's text as a skill (``path`` names it: the version at a git ref, say)."""
    warnings: list[str] = []
    meta: Mapping[str, Any] = {}
    body = text
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.DOTALL)
    if match:
        body = text[match.end() :]
        try:
            loaded, _ = load_yaml(match.group(1))
        except DataError as error:
            warnings.append(f"front matter is not usable YAML ({error.message})")
            loaded = {}
        if isinstance(loaded, Mapping):
            meta = loaded
        elif loaded is not None:
            warnings.append("front matter should be a mapping with 'name' and 'description'")
    else:
        warnings.append("no front matter; add '---\\nname: ...\\ndescription: ...\\n---'")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        warnings.append("front matter has no 'name'")
        name = path.parent.name or "skill"
    elif len(name) > 64 or not NAME_RULE.match(name):
        warnings.append(
            f"name {name!r} breaks the Agent Skills rule: 1-64 characters of a-z, 0-9 "
            "and single hyphens, not at the start or end"
        )
    elif name != path.parent.name:
        warnings.append(f"name {name!r} differs from its directory {path.parent.name!r}")
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        warnings.append("front matter has no 'description'")
        description = ""
    elif len(description) > 1024:
        warnings.append(f"description is {len(description)} characters; the limit is 1024")
    if not body.strip():
        warnings.append("the skill body is empty")
    return Skill(str(name), str(description), body, path, tuple(warnings))
