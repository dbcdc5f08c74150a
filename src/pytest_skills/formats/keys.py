"""The one policy for keys, in every format: use what we know, keep the rest.

A key we do not use is kept as metadata and named in one warning per file; a key
that is a near miss of one we know (``expectd``, ``asertions``) is a typo that would
silently drop a check, so it is an error that says which key was meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field

from pytest_skills.formats.notices import Notice

#: How alike a key must be to a known one to count as its typo (difflib's ratio). Keys
#: found in real test files (``category``, ``must_have``, ``version``, ``role``) stay
#: below it; ``expectd`` (0.93), ``asertions`` (0.95) and ``case`` (0.89) are above.
NEAR_MISS = 0.8


def near_miss(key: str, known: Collection[str]) -> str | None:
    """The known key that ``key`` looks like a typo of, if any."""
    if key in known:
        return None
    lowered = {name.lower(): name for name in known}
    if key.lower() in lowered:
        return lowered[key.lower()]
    match = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=NEAR_MISS)
    return lowered[match[0]] if match else None


@dataclass
class UnusedKeys:
    """Unused keys of one file, by name, with the lines they appear on and the first
    place that has each (``eval 2 ('name')``)."""

    lines: dict[str, list[int | None]] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, line: int | None, what: str = "") -> None:
        self.lines.setdefault(key, []).append(line)
        self.places.setdefault(key, what)

    def warning(self) -> Notice | None:
        """One line naming every unused key, at the first one's line; None when none."""
        if not self.lines:
            return None
        named = ", ".join(
            _where(key, lines, self.places.get(key, "")) for key, lines in self.lines.items()
        )
        first = min((line for lines in self.lines.values() for line in lines if line), default=None)
        return Notice(f"not used by pytest-skills, kept as metadata in the report: {named}", first)


def _where(key: str, lines: list[int | None], what: str) -> str:
    first = next((line for line in lines if line is not None), None)
    more = f" and {len(lines) - 1} more" if len(lines) > 1 else ""
    # The top level needs no naming; a case does, so the warning says which.
    place = f"{what}, " if what and what != "the top level" else ""
    if first is None:
        return f"{key!r} ({place}{len(lines)} places)" if more else repr(key)
    return f"{key!r} ({place}line {first}{more})"
