"""Under xdist: the items queued on this worker, so their calls start together.

xdist has no public API for a worker's queue; this reads its ``torun`` queue under
its lock and falls back to the current item alone when the internals differ. Only
the speed of a distributed live run depends on it, never a result.
"""

from __future__ import annotations

import pytest


def queued_items(config: pytest.Config, current: pytest.Item) -> list[pytest.Item]:
    items: list[pytest.Item] = [current]
    for plugin in config.pluginmanager.get_plugins():
        queue = getattr(plugin, "torun", None)
        session = getattr(plugin, "session", None)
        if queue is None or session is None or not hasattr(queue, "lock"):
            continue
        try:
            with queue.lock() as pending:
                indices = [i for i in pending if isinstance(i, int)]
            items.extend(session.items[i] for i in indices)
        except Exception:  # xdist internals changed: fall back to one item at a time
            pass
    return items
