"""The run's model calls: one cache and one runner, made when first needed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import pytest_skills.gcpause as gcpause
from pytest_skills.execution.cache import CacheError, ResponseCache
from pytest_skills.execution.fingerprints import GGUFFingerprints
from pytest_skills.execution.runner import BackendFactory, Call, Outcome, Progress, Runner
from pytest_skills.execution.secrets import Redactor
from pytest_skills.execution.window import CallWindow

#: From this many planned calls, what collection and replay made is frozen (gc).
FREEZE_AT = 1000


class CallService:
    """Answers calls through the cache and the backends, for every node of the run."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        cache_mode: str,
        concurrency: int,
        retries: int,
        gguf_dirs: Sequence[Path],
        backend_factory: BackendFactory,
        redact: Redactor,
        announce: Callable[[str], None],
    ) -> None:
        self._cache_dir = cache_dir
        self._mode = cache_mode
        self._concurrency = concurrency
        self._retries = retries
        self._gguf_dirs = gguf_dirs
        self._backend_factory = backend_factory
        self._redact = redact
        self._announce = announce
        self._cache: ResponseCache | None = None
        self._runner: Runner | None = None

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(
                self._cache_dir,
                read_only=self._mode == "replay",
                secrets=self._redact.secrets,
                # A refresh is how a cache is cleaned: one that is not ours is rebuilt.
                rebuild_untrusted=self._mode == "refresh",
                announce=self._announce,
            )
        return self._cache

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            fingerprints = GGUFFingerprints(self._gguf_dirs, self._announce)
            self._runner = Runner(
                cache=self.cache if self._mode != "off" else None,
                mode=self._mode,
                backend_factory=self._backend_factory,
                concurrency=self._concurrency,
                retries=self._retries,
                replay_check=fingerprints.warning,
                redact=self._redact,
            )
        return self._runner

    @property
    def unrecorded(self) -> tuple[int, str] | None:
        """Answers the cache could not record (a read-only directory, a full disk)."""
        return self._cache.unrecorded if self._cache is not None else None

    @property
    def progress(self) -> Progress | None:
        """What the runner did, if anything was asked."""
        return self._runner.progress if self._runner is not None else None

    def ask(self, call: Call) -> Outcome:
        """The answer to one call (waits for it)."""
        return self.runner.outcome(call)

    def submit(self, calls: Sequence[Call]) -> None:
        """Start ``calls`` without waiting for them."""
        if calls:
            self.runner.submit(calls)

    def finished(self, call: Call) -> Outcome | None:
        return self._runner.finished(call) if self._runner is not None else None

    def window(
        self,
        order: Sequence[Hashable],
        plan: Callable[[Hashable], Sequence[Call]],
        followups: Callable[[Hashable], Sequence[Call] | None],
    ) -> CallWindow:
        """A window over the items in ``order`` that keeps the concurrency full twice
        over: enough for every thread to have its next call ready, no more."""
        window = CallWindow(self.runner, order, plan, followups, ahead=2 * self._concurrency)
        if self.runner.progress.total >= FREEZE_AT:
            # The collected items and their answers live until the session ends; every
            # later collection would scan them again (a third of a large replay's time).
            gcpause.freeze_survivors()
        return window

    def close(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        if self._cache is not None:
            with contextlib.suppress(CacheError):
                self._cache.close()
