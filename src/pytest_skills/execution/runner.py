"""Plan and execute model calls: de-duplicated, through the cache, concurrent.

The runner is given :class:`Call` objects (a request, the model spec that serves it
and a label naming the case) before the items that need them run. Cached answers
resolve at once; the rest go to a pool of ``concurrency`` threads, except calls to
*exclusive* backends (a local model in this process), which run one at a time on a
thread of their own, in the order planned so consecutive calls share the skill
prefix. Failures never escape as exceptions: every call ends in an :class:`Outcome`,
whatever a backend, the cache or a secret scan raises on whichever thread, so no
waiter can wait forever. Error texts are redacted before anyone sees them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest_skills.gcpause as gcpause
from pytest_skills.backends import Backend, BackendError
from pytest_skills.execution.cache import (
    CacheError,
    ResponseCache,
    SecretInEntryError,
    UnreadableEntryError,
)
from pytest_skills.execution.entries import normalised
from pytest_skills.execution.loggers import share_loggers_safely
from pytest_skills.models import ErrorKind, ModelSpec, Request, Response

BackendFactory = Callable[[ModelSpec], Backend]
#: A warning about a replayed answer (e.g. a changed GGUF file), or None.
ReplayCheck = Callable[[ModelSpec, Response], "str | None"]

#: From this many calls submitted at once, their cache entries are read in one pass
#: over the table; fewer are looked up one by one.
PREFETCH_AT = 32

#: Put on a work queue to end the thread that drains it.
_SHUTDOWN = object()

#: Exponential backoff: attempt n waits between half and all of BASE * 2**n, capped.
#: The lower half is a floor that holds even when a server says ``retry-after: 0``.
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


@dataclass(frozen=True, slots=True)
class Call:
    request: Request
    spec: ModelSpec
    #: Names the case (``path::case-id``): replay misses look for entries with it.
    label: str
    #: The arm the call was planned for (the progress line counts by arm).
    arm: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    response: Response | None = None
    error: str | None = None
    #: Why there is no answer, when ``error`` is set.
    kind: ErrorKind | None = None
    warnings: tuple[str, ...] = ()
    #: The provider batch the answer waits in, or failed in (``--skill-batch``).
    batch: str | None = None

    def __post_init__(self) -> None:
        if self.error is not None and self.kind is None:
            object.__setattr__(self, "kind", ErrorKind.CALL_FAILED)

    @property
    def ok(self) -> bool:
        return self.response is not None


@dataclass
class Progress:
    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    #: Per arm that planned calls: [live, from the cache, failed].
    by_arm: dict[str, list[int]] = field(default_factory=dict)

    def count(self, arm: str, cached: bool, failed: bool) -> None:
        self.done += 1
        self.cached += cached
        self.failed += failed
        if arm:
            counts = self.by_arm.setdefault(arm, [0, 0, 0])
            counts[2 if failed else 1 if cached else 0] += 1

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Runner:
    def __init__(
        self,
        *,
        cache: ResponseCache | None,
        mode: str,
        backend_factory: BackendFactory,
        concurrency: int = 8,
        retries: int = 4,
        sleep: Callable[[float], Any] | None = None,
        replay_check: ReplayCheck | None = None,
        redact: Callable[[str], str] = str,
    ):
        self.cache = cache if mode != "off" else None
        #: Applied to every error and warning text: providers echo keys in messages.
        self.redact = redact
        self.replay_check = replay_check
        self.mode = mode
        self.backend_factory = backend_factory
        self.concurrency = concurrency
        self.retries = retries
        self.progress = Progress()
        #: The outcome of every submitted request by key, None while it runs. (A Future
        #: each would cost a lock, a condition and a deque: 26 MB for 20,000 calls.)
        self._outcomes: dict[str, Outcome | None] = {}
        #: The arm of each call still running.
        self._arms: dict[str, str] = {}
        self._backends: dict[str, Backend | BackendError] = {}
        self._lock = threading.Lock()
        #: Notified whenever a call finishes; wait() sleeps on it.
        self._finished = threading.Condition(self._lock)
        self._pending = 0
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._pool: queue.Queue[Any] = queue.Queue()
        self._pool_threads: list[threading.Thread] = []
        self._exclusive_threads: list[threading.Thread] = []
        self._exclusive: dict[int, queue.Queue[Any]] = {}
        #: Threads inside a backend call right now: stop() never waits for these.
        self._busy: set[threading.Thread] = set()

    # --- planning -------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Submitted calls that have not finished yet."""
        return self._pending

    def submit(self, calls: Iterable[Call]) -> None:
        """Start every call not already known; cache hits resolve immediately."""
        fresh = self._register(calls)
        # Local models evaluate a shared prefix once when calls with the same skill
        # and similar input follow each other; remote calls don't care about order.
        fresh.sort(key=lambda c: (c.spec.resolved, c.request.system or "", c.request.prompt))
        with self._read_ahead(fresh):
            self._start_all(fresh)

    def replay(self, calls: Iterable[Call]) -> None:
        """Resolve every call the cache can answer without a model, and leave the rest
        unsubmitted: replaying costs nothing, so it need not wait for its turn.

        In ``replay`` mode that is every call (a miss is an error, not a call); in
        ``auto`` mode the hits; otherwise none.
        """
        if self.cache is None or self.mode not in ("auto", "replay"):
            return
        with self._lock:
            unknown = list(
                {c.request.key: c for c in calls if c.request.key not in self._outcomes}.values()
            )
        with self._read_ahead(unknown):
            for call in unknown:
                outcome = self._cached_outcome(call)
                if outcome is not None:
                    self._register([call])
                    self._finish(call.request.key, outcome)

    def hold(self, held: Iterable[tuple[Call, Outcome]]) -> None:
        """Settle calls another process answers later (a provider batch) with the
        outcome that says so; they are not counted as calls made, live or cached."""
        with self._finished:
            for call, outcome in held:
                if call.request.key not in self._outcomes:
                    self._outcomes[call.request.key] = outcome
            self._finished.notify_all()

    def backend(self, spec: ModelSpec) -> Backend | BackendError:
        """The backend serving ``spec`` (built once), or why there is none."""
        return self._backend(spec)

    def _register(self, calls: Iterable[Call]) -> list[Call]:
        """Mark the calls not known yet as running; return them."""
        fresh = []
        with self._lock:
            for call in calls:
                key = call.request.key
                if key not in self._outcomes:
                    self._outcomes[key] = None
                    self._arms[key] = call.arm
                    fresh.append(call)
            self.progress.total += len(fresh)
            self._pending += len(fresh)
        return fresh

    @contextlib.contextmanager
    def _read_ahead(self, calls: list[Call]) -> Iterator[None]:
        """Many calls at once: read their entries in one pass over the table."""
        if len(calls) < PREFETCH_AT:
            yield
            return
        with gcpause.paused():  # thousands of entries decoded: no cycles among them
            if self.cache is not None and self.mode in ("auto", "replay"):
                with contextlib.suppress(Exception):  # a broken cache fails each get
                    self.cache.prefetch(call.request for call in calls)
            yield

    def _start_all(self, fresh: list[Call]) -> None:
        for index, call in enumerate(fresh):
            key = call.request.key
            try:
                self._start(call, key)
            except KeyboardInterrupt:
                self._stop.set()
                for rest in fresh[index:]:  # nobody will start these: end them now
                    self._finish(rest.request.key, Outcome(error="interrupted"))
                raise
            except BaseException as error:  # a broken entry or backend factory: this call only
                self._finish(key, Outcome(error=f"{type(error).__name__}: {error}"))

    def _cached_outcome(self, call: Call) -> Outcome | None:
        """What the cache says of ``call``: an answer, an unreadable entry, a replay
        miss; None when the model must be asked."""
        if self.cache is None or self.mode not in ("auto", "replay"):
            return None
        try:
            hit = self.cache.get(call.request)
        except UnreadableEntryError as error:
            return Outcome(error=str(error), kind=ErrorKind.UNREADABLE_ENTRY)
        except CacheError as error:
            # The cache as a whole: every call shares it, so the summary says it once.
            return Outcome(error=str(error), kind=ErrorKind.MODEL_UNAVAILABLE)
        if hit is not None:
            warning = self.replay_check(call.spec, hit) if self.replay_check else None
            return Outcome(response=hit, warnings=(warning,) if warning else ())
        if self.mode == "replay":
            return Outcome(
                error=f"not in the cache ({self._explain(call)})", kind=ErrorKind.REPLAY_MISS
            )
        return None

    def _start(self, call: Call, key: str) -> None:
        cached = self._cached_outcome(call)
        if cached is not None:
            self._finish(key, cached)
            return
        backend = self._backend(call.spec)
        if isinstance(backend, BackendError):
            self._finish(key, _unavailable(backend))
            return
        if getattr(backend, "exclusive", False):
            self._exclusive_queue(backend).put((call, backend, key))
        else:
            self._ensure_pool()
            self._pool.put((call, backend, key))

    def _explain(self, call: Call) -> str:
        assert self.cache is not None
        try:
            return self.cache.explain_miss(call.request, call.label)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # the miss is the message; the search is a courtesy
            return f"the cache could not be searched for the nearest entry: {error!r}"

    def _backend(self, spec: ModelSpec) -> Backend | BackendError:
        if spec.resolved not in self._backends:
            try:
                self._backends[spec.resolved] = self.backend_factory(spec)
            except BackendError as error:
                # Any failure to build it is the model's, not one call's.
                error.model_unavailable = True
                self._backends[spec.resolved] = error
        return self._backends[spec.resolved]

    # --- execution ------------------------------------------------------------------

    def _ensure_pool(self) -> None:
        if len(self._pool_threads) >= self.concurrency:
            return  # asked before every call: the threads are made once
        share_loggers_safely()
        while len(self._pool_threads) < self.concurrency:
            thread = threading.Thread(
                target=self._drain,
                args=(self._pool,),
                daemon=True,
                name=f"pytest-skills-{len(self._pool_threads)}",
            )
            thread.start()
            self._pool_threads.append(thread)

    def _exclusive_queue(self, backend: Backend) -> queue.Queue[Any]:
        if id(backend) not in self._exclusive:
            share_loggers_safely()
            work: queue.Queue[Any] = queue.Queue()
            self._exclusive[id(backend)] = work
            thread = threading.Thread(
                target=self._drain, args=(work,), daemon=True, name="pytest-skills-local"
            )
            thread.start()
            self._exclusive_threads.append(thread)
        return self._exclusive[id(backend)]

    def _drain(self, work: queue.Queue[Any]) -> None:
        # Daemon threads: Ctrl-C must not wait for a slow provider to answer.
        while True:
            task = work.get()
            if task is _SHUTDOWN:
                if self.cache is not None:
                    # diskcache keeps one SQLite connection per thread; the last one to
                    # close folds the write-ahead log back into cache.db.
                    self.cache.release_thread()
                return
            call, backend, key = task
            if self._stop.is_set():
                self._finish(key, Outcome(error="interrupted"))
                continue
            current = threading.current_thread()
            with self._lock:
                self._busy.add(current)
            try:
                outcome = self._execute(call, backend)
            except BaseException as error:  # the call's waiter must never wait forever
                outcome = Outcome(
                    error=f"{type(error).__name__} while calling {call.spec.name}: {error}"
                )
            finally:
                with self._lock:
                    self._busy.discard(current)
            self._finish(key, outcome)

    def _execute(self, call: Call, backend: Backend) -> Outcome:
        attempt = 0
        while True:
            unavailable = self._backends.get(call.spec.resolved)
            if isinstance(unavailable, BackendError):
                return _unavailable(unavailable)
            try:
                response = backend.complete(call.request)
                problem = _not_a_response(response)
                if problem:
                    return Outcome(error=f"{call.spec.name}: the backend returned {problem}")
                # As the cache stores it, so the live run and its replay show the same.
                response = normalised(response)
                break
            except BackendError as error:
                if error.model_unavailable:
                    # No later call can do better: they fail at once with this message.
                    with self._lock:
                        self._backends[call.spec.resolved] = error
                    return _unavailable(error)
                if not error.retryable or attempt >= self.retries or self._stop.is_set():
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    return Outcome(error=f"{error.message}{tries}")
                self._sleep(self._delay(attempt, error.retry_after))
                attempt += 1
            except Exception as error:  # a third-party backend's bug must not kill the run
                return Outcome(error=f"{type(error).__name__} in {call.spec.name}: {error}")
        warnings: tuple[str, ...] = ()
        if self.cache is not None:
            try:
                self.cache.put(call.request, response, call.label, arm=call.arm)
            except (SecretInEntryError, CacheError) as error:
                warnings = (str(error),)
            except BaseException as error:  # e.g. a backend's extra that is not JSON
                # Whatever went wrong in recording it, the answer itself is good.
                warnings = (f"not cached: {type(error).__name__}: {error}",)
        return Outcome(response=response, warnings=warnings)

    @staticmethod
    def _delay(attempt: int, retry_after: float | None) -> float:
        # Jitter keeps many workers that hit one rate limit from retrying in step; the
        # floor keeps a server that says "retry-after: 0" from being hit back to back.
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 16))
        backoff = random.uniform(ceiling / 2, ceiling)
        if retry_after is None or not math.isfinite(retry_after):
            return backoff
        return max(min(retry_after, BACKOFF_CAP_S), backoff)

    def _finish(self, key: str, outcome: Outcome) -> None:
        """Record the outcome of ``key`` (once), its texts redacted. Never raises: it
        runs on pool threads, whose death would strand every call queued behind."""
        if outcome.error is not None or outcome.warnings:
            try:
                outcome = dataclasses.replace(
                    outcome,
                    error=None if outcome.error is None else self.redact(outcome.error),
                    warnings=tuple(self.redact(w) for w in outcome.warnings),
                )
            except BaseException as error:  # never let a broken redactor show a secret
                outcome = Outcome(
                    error=f"the error text could not be redacted ({type(error).__name__})"
                )
        with self._finished:
            if self._outcomes.get(key) is not None:  # finished already: count it once
                return
            self._outcomes[key] = outcome
            self._pending -= 1
            self.progress.count(
                self._arms.pop(key, ""),
                cached=outcome.response is not None and outcome.response.cached,
                failed=not outcome.ok,
            )
            self._finished.notify_all()

    # --- results --------------------------------------------------------------------

    def wait(self, on_tick: Callable[[Progress], None] | None = None, tick_s: float = 0.1) -> None:
        """Block until every submitted call has finished; Ctrl-C stops promptly."""
        try:
            while True:
                with self._finished:
                    if self._pending <= 0:
                        break
                if on_tick is not None:
                    on_tick(self.progress)
                with self._finished:
                    if self._pending > 0:
                        self._finished.wait(tick_s)
        except KeyboardInterrupt:
            self._stop.set()
            raise

    def outcome(self, call: Call) -> Outcome:
        """The outcome of one call, submitting and waiting for it if needed."""
        self.submit([call])
        key = call.request.key
        try:
            with self._finished:
                while (outcome := self._outcomes[key]) is None:
                    self._finished.wait(1.0)
                return outcome
        except KeyboardInterrupt:
            self._stop.set()
            raise

    def finished(self, call: Call) -> Outcome | None:
        """The outcome of a submitted call if it has finished, without waiting."""
        return self._outcomes.get(call.request.key)

    def stop(self) -> None:
        """Cancel what has not started and end the idle worker threads.

        A pool thread still inside a remote call (after Ctrl-C) is a daemon that is
        left behind rather than waited for: its answer was not going to be used, and
        the SDK's timeout could keep the user waiting for minutes. Idle threads are
        joined so each closes its cache connection, and so are the threads of
        exclusive (local) backends: a model in this process must not be freed while
        a generation still runs on it.
        """
        self._stop.set()
        pool, exclusive = self._pool_threads, self._exclusive_threads
        for _ in pool:
            self._pool.put(_SHUTDOWN)
        for work in self._exclusive.values():
            work.put(_SHUTDOWN)
        self._pool_threads, self._exclusive_threads, self._exclusive = [], [], {}
        for thread in exclusive:
            thread.join()
        left_behind = False
        for thread in pool:
            while thread.is_alive():
                with self._lock:
                    if thread in self._busy:
                        left_behind = True
                        break
                # Short joins: a thread that starts a call meanwhile is seen as busy.
                thread.join(0.05)
        if left_behind:
            return  # closing a client under a request in flight could block on it
        for backend in self._backends.values():
            close = getattr(backend, "close", None)
            if callable(close) and getattr(backend, "exclusive", False) is False:
                with contextlib.suppress(Exception):
                    close()


def _unavailable(error: BackendError) -> Outcome:
    return Outcome(error=error.message, kind=ErrorKind.MODEL_UNAVAILABLE)


def _not_a_response(response: object) -> str | None:
    """What is wrong with a backend's return value, if anything (a plugin's bug)."""
    if not isinstance(response, Response):
        return f"{type(response).__name__}, not a Response"
    if not isinstance(response.text, str):
        return f"an answer of type {type(response.text).__name__}, not a string"
    return None
