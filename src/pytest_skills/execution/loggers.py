"""Loggers made on call threads, while pytest walks the loggers on the main thread.

An SDK's first request imports modules lazily (its HTTP transport, tracing), and those
modules make their loggers with ``logging.getLogger`` on whichever thread sends it: one
of the runner's. Meanwhile pytest's logging plugin, at every item's setup, call and
teardown, walks ``logging.Logger.manager.loggerDict.values()`` without logging's lock,
and a logger added in between ends the item with "dictionary changed size during
iteration". Which modules an SDK imports late is its own business and changes between
versions, so rather than import them all ahead, the manager's dict hands out a copy of
its values: taken in one step under the GIL, it cannot change while it is walked.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

_installed = threading.Lock()


class _SnapshotDict(dict):  # type: ignore[type-arg]
    """The loggers by name; ``values()`` is a list made at once, safe to walk."""

    def values(self) -> Any:
        return list(super().values())


def share_loggers_safely() -> None:
    """Make walking the loggers safe while other threads add some; once per process."""
    manager = logging.Logger.manager
    with _installed:
        if type(manager.loggerDict) is dict:
            # logging's own lock (an RLock in every supported Python): no logger is
            # added between the copy and the swap.
            with logging._lock:  # type: ignore[attr-defined]
                manager.loggerDict = _SnapshotDict(manager.loggerDict)
