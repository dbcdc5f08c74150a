"""Text as it may be written: no lone surrogates in files, no control characters on a
terminal. Model answers, case ids and cache entries are untrusted text."""

from __future__ import annotations

import re

#: Half of a UTF-16 pair, alone (``"\ud83d"``, half an emoji, from a JSON ``\u`` escape):
#: no UTF-8 encoder writes it.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: ANSI escape sequences (CSI, OSC, and two-character ones), then any C0/C1 control
#: character but newline and tab, and DEL: what could move the cursor, clear the
#: screen, retitle the window or fake pytest's own lines.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clear screen
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[@-Z\\-_]"  # two-character escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as one C1 character
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: In a node id, newlines and tabs too: an id is one line.
_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def id_text(text: str) -> str:
    """A case id as a pytest node name: every control character (escapes included)
    and lone surrogate written as its ``\\xNN``/``\\uNNNN`` escape, so ids that
    differ stay apart, and none can move the cursor in pytest's own lines."""
    return _SURROGATE.sub(_escaped, _ID_CONTROL.sub(_escaped, text))


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def without_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it can be encoded."""
    return _SURROGATE.sub("\ufffd", text)


def printable(text: str) -> str:
    """``text`` for a terminal: escape sequences removed, other control characters
    shown as ``\\xNN``/``\\uNNNN`` escapes, lone surrogates replaced."""
    text = _ANSI.sub("", text)
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return without_surrogates(text)
