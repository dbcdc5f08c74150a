"""A warning about a test file that knows the line it is about.

Formats return warnings as text (``Suite.warnings``); a :class:`Notice` is that text
and also carries the line of the key or case it concerns, so pytest can show the
warning at ``file:line`` rather than at the file's start. Pure code: no pytest.
"""

from __future__ import annotations


class Notice(str):
    """A warning's text, with ``line`` (1-based) where known."""

    line: int | None

    def __new__(cls, text: str, line: int | None = None) -> Notice:
        notice = super().__new__(cls, text)
        notice.line = line
        return notice

    def __reduce__(self) -> tuple[type[Notice], tuple[str, int | None]]:
        # Copies and pickles (xdist) keep the line.
        return (Notice, (str(self), self.line))


def line_of(warning: str) -> int | None:
    """The line a warning is about, when it says."""
    return warning.line if isinstance(warning, Notice) else None
