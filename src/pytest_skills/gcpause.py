"""Sparing Python's cyclic garbage collector work this package makes for it.

Reading a test file or thousands of cache entries makes a great many objects and no
reference cycles; the collections they would trigger scan the whole heap again and
again, and cost as much as the work itself (half of a 10,000-case file's reading).
Objects are still freed by reference counting; collection resumes afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze_survivors() -> None:
    """Move every object alive now out of the collector's reach (``gc.freeze``).

    For objects that live until the process ends anyway (a session's items, their
    planned calls and answers): each full collection would scan them again, and a
    large suite triggers many. They are still freed by reference counting.
    """
    gc.freeze()
