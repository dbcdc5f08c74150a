"""Calls made just ahead of the items that need them, so a stopped run stops spending.

pytest runs items one at a time and may stop after any of them (``-x``, ``--maxfail``,
Ctrl-C). Making every planned call before the first item runs would pay for answers
nobody grades; making each item's calls only when it runs would leave the providers'
concurrency unused. A :class:`CallWindow` keeps about ``ahead`` calls in flight beyond
the item that runs now, in the order the items will run, and submits nothing once
pytest stops asking. Answers the cache already holds cost nothing and resolve at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Protocol

from pytest_skills.execution.runner import Call


class Submitter(Protocol):
    """The part of the runner a window needs."""

    @property
    def in_flight(self) -> int: ...

    def submit(self, calls: Sequence[Call]) -> None: ...

    def replay(self, calls: Sequence[Call]) -> None: ...


class CallWindow:
    """Feeds a runner the calls of the items ``order`` lists, a window at a time.

    ``plan(item)`` gives the calls one item will ask for (none for items whose calls
    cannot be known ahead, such as tests that call the ``skill_model`` fixture);
    ``followups(item)`` the calls that grading its answers will make (a judge's), or
    None while its answers are still coming.
    """

    def __init__(
        self,
        runner: Submitter,
        order: Sequence[Hashable],
        plan: Callable[[Hashable], Sequence[Call]],
        followups: Callable[[Hashable], Sequence[Call] | None],
        *,
        ahead: int,
    ) -> None:
        self._runner = runner
        self._order = list(order)
        self._plans = [plan(item) for item in self._order]
        self._index = {item: position for position, item in enumerate(self._order)}
        self._followups = followups
        self._ahead = max(1, ahead)
        #: Items before this position have had their calls submitted.
        self._submitted = 0
        #: Items whose follow-up calls were submitted (or that have none).
        self._followed: set[int] = {i for i, calls in enumerate(self._plans) if not calls}
        # Replayed answers need no window: resolve them all now, in one pass.
        runner.replay([call for calls in self._plans for call in calls])

    def before(self, item: Hashable) -> None:
        """``item`` is about to run: its calls, and the following items' up to the window."""
        position = self._index.get(item)
        if position is None:
            return
        if position >= self._submitted:
            # Items run in order; one that runs out of it (a plugin reordering them
            # late) still gets its calls now.
            self._runner.submit(self._plans[position])
            if position == self._submitted:
                self._submitted += 1
        while self._submitted < len(self._plans) and self._runner.in_flight < self._ahead:
            self._runner.submit(self._plans[self._submitted])
            self._submitted += 1
        self._follow_up(position)

    def _follow_up(self, start: int) -> None:
        """Grading calls of items in the window whose answers have all come. Only the
        next ``ahead`` items are looked at: a replay submits every item at once, and
        looking at all of them before each would cost the square of the suite."""
        for position in range(start, min(self._submitted, start + self._ahead)):
            if position in self._followed:
                continue
            calls = self._followups(self._order[position])
            if calls is not None:
                self._followed.add(position)
                self._runner.submit(calls)
