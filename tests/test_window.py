"""The call window (execution/window.py): calls just ahead of the items that need them."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_skills.execution.runner import Call
from pytest_skills.execution.window import CallWindow


class Recorder:
    """A runner that answers every call at once, as a replay does: nothing in flight."""

    in_flight = 0

    def __init__(self) -> None:
        self.submitted: list[Sequence[Call]] = []

    def submit(self, calls: Sequence[Call]) -> None:
        self.submitted.append(calls)

    def replay(self, calls: Sequence[Call]) -> None:
        pass


def test_a_replayed_suite_looks_at_follow_ups_a_window_at_a_time_not_all_before_each() -> None:
    items, ahead = list(range(2000)), 8
    looked: list[int] = []

    def followups(item: object) -> Sequence[Call] | None:
        looked.append(int(item))  # type: ignore[call-overload]
        return None  # answers still coming: asked again later

    # One stand-in call per item: the window only hands plans on to the runner.
    window = CallWindow(Recorder(), items, lambda item: (item,), followups, ahead=ahead)  # type: ignore[arg-type,return-value]
    for item in items:
        window.before(item)
    # Each item is looked at while it is among the next `ahead`: linear, not quadratic.
    assert len(looked) <= len(items) * ahead
    assert set(looked) == set(items)
