"""Short forms of model names for narrow columns: distinct whenever the names are."""

from __future__ import annotations

from collections.abc import Sequence

ELLIPSIS = "…"


def short_names(names: Sequence[str], width: int) -> dict[str, str]:
    """Each name, cut to ``width`` characters where it is longer, keeping every short
    form distinct.

    Names of one family differ at the end as often as at the start
    (``claude-sonnet-4-5-20250929`` and ``…-20250514``), so a name is cut in the middle,
    keeping as much of its end as the other names need to stay apart. Where no cut in
    ``width`` keeps them apart, the names stay whole: a wide column beats a wrong row.
    """
    width = max(width, 5)
    # A readable end first (a date, a size), then any end that works.
    readable = width // 3
    for tail in [0, *range(readable, width - 1), *range(1, readable)]:
        shown = {name: _cut(name, width, tail) for name in names}
        if len(set(shown.values())) == len(set(names)):
            return shown
    return {name: name for name in names}


def _cut(name: str, width: int, tail: int) -> str:
    if len(name) <= width:
        return name
    head = width - 1 - tail
    return name[:head] + ELLIPSIS + (name[len(name) - tail :] if tail else "")
