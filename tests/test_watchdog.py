"""A watchdog over the runner: whatever a backend, the cache or a secret scan raises, on
whichever thread, every call ends in an outcome and nothing waits forever.

Each scenario runs the real runner, with real pool threads and a real cache, and injects
one fault; the run happens on a thread that must end within a generous hang guard.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_skills.backends import BackendError
from pytest_skills.execution import entries
from pytest_skills.execution.cache import ResponseCache
from pytest_skills.execution.runner import Call, Outcome, Runner
from pytest_skills.models import ErrorKind, ModelSpec, Request, Response

HANG_GUARD_S = 120
SPEC = ModelSpec("fake", "fake", "fake-model")


class Fault(BaseException):
    """Not even an Exception: the kind of thing nobody catches."""


FAULTS: list[BaseException] = [
    RuntimeError("dictionary changed size during iteration"),
    KeyError("PYTEST_CURRENT_TEST"),
    RecursionError("maximum recursion depth exceeded"),
    MemoryError(),
    SystemExit(3),
    KeyboardInterrupt(),
    Fault("a BaseException from a plugin"),
]


class Answering:
    """A backend that answers at once, or misbehaves as told."""

    exclusive = False

    def __init__(self, behaviour: Callable[[Request], Any] | None = None):
        self.behaviour = behaviour

    def complete(self, request: Request) -> Any:
        if self.behaviour is not None:
            return self.behaviour(request)
        return Response(f"answer to {request.prompt}")


class FaultyCache(ResponseCache):
    """The real cache, with one of its operations raising ``fault``."""

    def __init__(self, directory: Path, where: str, fault: BaseException):
        super().__init__(directory, secrets={})
        self.where, self.fault = where, fault

    def get(self, request: Request) -> Response | None:
        if self.where == "get":
            raise self.fault
        return super().get(request)

    def put(self, request: Request, response: Response, label: str, arm: str = "") -> None:
        if self.where == "put":
            raise self.fault
        super().put(request, response, label, arm)

    def explain_miss(self, request: Request, label: str) -> str:
        if self.where == "explain_miss":
            raise self.fault
        return super().explain_miss(request, label)


class ChangingEnvironment(dict):
    """Secrets whose scan fails the way iterating ``os.environ`` did on a pool thread."""

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        raise RuntimeError("dictionary changed size during iteration")


def calls(count: int = 24) -> list[Call]:
    return [Call(Request("fake", "fake-model", f"q{i}"), SPEC, f"f::c{i}") for i in range(count)]


def run_under_guard(runner: Runner, planned: list[Call]) -> dict[str, Outcome]:
    """Submit and wait on another thread; fail (not hang) if the run never ends."""
    failure: list[BaseException] = []

    def body() -> None:
        try:
            runner.submit(planned)
            runner.wait()
        except BaseException as error:  # the main thread's own faults, re-raised below
            failure.append(error)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), "the run is still waiting for a call that never ends"
    try:
        outcomes = {call.request.key: runner.finished(call) for call in planned}
        assert all(outcome is not None for outcome in outcomes.values()), "a call was lost"
        return outcomes  # type: ignore[return-value]
    finally:
        runner.stop()
        assert not failure or isinstance(failure[0], (KeyboardInterrupt, Fault, SystemExit)), (
            failure
        )


def _name(fault: BaseException) -> str:
    return type(fault).__name__


def _reported(fault: BaseException, outcome: Outcome) -> bool:
    """The outcome names the fault; Ctrl-C on the submitting thread ends the run instead."""
    text = outcome.error or ""
    return _name(fault) in text or (isinstance(fault, KeyboardInterrupt) and text == "interrupted")


@pytest.mark.parametrize("fault", FAULTS, ids=_name)
def test_a_backend_raising_anything_fails_its_calls_only(fault: BaseException) -> None:
    def behaviour(request: Request) -> Response:
        if request.prompt.endswith("3"):  # q3, q13, q23
            raise fault
        return Response("fine")

    runner = Runner(cache=None, mode="off", backend_factory=lambda _s: Answering(behaviour))
    outcomes = run_under_guard(runner, calls()).values()
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 3 and len(outcomes) == 24
    assert all(_name(fault) in (o.error or "") for o in failed)


@pytest.mark.parametrize(
    "returned",
    [None, "plain text", Response(text=None)],  # type: ignore[arg-type]
    ids=["none", "a-string", "text-none"],
)
def test_a_backend_returning_nonsense_fails_its_calls(returned: object, tmp_path: Path) -> None:
    runner = Runner(
        cache=ResponseCache(tmp_path, secrets={}),
        mode="auto",
        backend_factory=lambda _s: Answering(lambda _r: returned),
    )
    outcomes = run_under_guard(runner, calls(4)).values()
    assert all("the backend returned" in (o.error or "") for o in outcomes)


def test_an_answer_the_cache_cannot_store_is_still_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An extra that is no JSON is stored as its text now; an entry over the size limit
    # (the writer's and the reader's) is what the cache cannot store.
    monkeypatch.setattr(entries, "MAX_ENTRY_BYTES", 200)
    too_large = Response("kept " * 100, extra={"handle": object()})
    runner = Runner(
        cache=ResponseCache(tmp_path, secrets={}),
        mode="auto",
        backend_factory=lambda _s: Answering(lambda _r: too_large),
    )
    outcomes = run_under_guard(runner, calls(4)).values()
    assert all(o.ok and "not cached: the entry is" in o.warnings[0] for o in outcomes)


@pytest.mark.parametrize("fault", FAULTS, ids=_name)
def test_a_backend_factory_raising_anything_fails_that_models_calls(fault: BaseException) -> None:
    def factory(_spec: ModelSpec) -> Answering:
        raise fault

    runner = Runner(cache=None, mode="off", backend_factory=factory)
    outcomes = run_under_guard(runner, calls(3)).values()
    assert all(_reported(fault, o) for o in outcomes)


@pytest.mark.parametrize("where", ["get", "put", "explain_miss"])
@pytest.mark.parametrize("fault", FAULTS, ids=_name)
def test_a_cache_raising_anything_never_loses_a_call(
    where: str, fault: BaseException, tmp_path: Path
) -> None:
    mode = "replay" if where == "explain_miss" else "auto"
    runner = Runner(
        cache=FaultyCache(tmp_path, where, fault), mode=mode, backend_factory=lambda _s: Answering()
    )
    outcomes = list(run_under_guard(runner, calls(12)).values())
    assert len(outcomes) == 12
    if where == "put":  # the answer is used; only its recording failed
        assert all(o.ok and _name(fault) in o.warnings[0] for o in outcomes)
    elif where == "explain_miss" and not isinstance(fault, KeyboardInterrupt):
        assert all(
            o.kind is ErrorKind.REPLAY_MISS and "could not be searched" in (o.error or "")
            for o in outcomes
        )
    else:
        assert all(_reported(fault, o) for o in outcomes)


def test_a_failing_secret_scan_never_loses_a_call(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, secrets={})
    cache.secrets = ChangingEnvironment(TOKEN="x" * 12)
    runner = Runner(cache=cache, mode="auto", backend_factory=lambda _s: Answering())
    outcomes = run_under_guard(runner, calls(16)).values()
    assert all(o.ok and "RuntimeError" in o.warnings[0] for o in outcomes)


@pytest.mark.parametrize("fault", FAULTS, ids=_name)
def test_a_failing_replay_check_or_redactor_never_loses_a_call(
    fault: BaseException, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path, secrets={})
    for call in calls(6):
        cache.put(call.request, Response("recorded"), call.label)

    def explode(*_args: object) -> None:
        raise fault

    replaying = Runner(
        cache=cache, mode="replay", backend_factory=lambda _s: Answering(), replay_check=explode
    )
    assert all(_reported(fault, o) for o in run_under_guard(replaying, calls(6)).values())

    failing = Runner(
        cache=None,
        mode="off",
        backend_factory=lambda _s: Answering(lambda _r: (_ for _ in ()).throw(BackendError("no"))),
        redact=explode,
    )
    outcomes = run_under_guard(failing, calls(6)).values()
    assert all("could not be redacted" in (o.error or "") for o in outcomes)
