"""Provider batch APIs: many requests sent as one job, answered within a day at half price.

A backend that has one exposes it as its ``batches`` attribute (a :class:`BatchClient`);
one that has none (a local model, a generic OpenAI-compatible server) has no such
attribute, or None, and its calls run live. Requests travel with a ``custom_id``: the
request's cache key, so results land in the cache under the key they answer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pytest_skills.models import ModelSpec, Request, Response

#: The built-in providers' batch APIs.
BATCH_APIS = {"anthropic": "Anthropic Message Batches", "openai": "OpenAI Batch API"}


class ItemState(enum.Enum):
    """How one request of a batch ended, in the providers' shared vocabulary."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    EXPIRED = "expired"
    CANCELED = "canceled"


@dataclass(frozen=True)
class BatchItem:
    """One request's result: a response when it succeeded, else why not."""

    custom_id: str
    state: ItemState
    response: Response | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchStatus:
    """Where a batch stands. ``ended``: its results can be read (every request is done,
    expired or canceled)."""

    batch_id: str
    ended: bool
    #: Requests per state as the provider counts them: processing, succeeded, errored,
    #: expired, canceled (zeros may be left out).
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(n for state, n in self.counts.items() if state != "processing")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@runtime_checkable
class BatchClient(Protocol):
    """A provider's batch API, as the run uses it. Every method may raise
    :class:`~pytest_skills.backends.BackendError` with a one-line reason."""

    def submit(self, requests: Sequence[tuple[str, Request]]) -> str:
        """Send ``(custom_id, request)`` pairs as one batch; the batch's id."""
        ...

    def status(self, batch_id: str) -> BatchStatus: ...

    def results(self, batch_id: str) -> Iterator[BatchItem]:
        """The result of every request of an ended batch."""
        ...

    def cancel(self, batch_id: str) -> BatchStatus: ...


def batch_api(spec: ModelSpec) -> str | None:
    """The batch API a built-in backend sends ``spec``'s calls to, or None (they run
    live): a model with a base URL of its own is a compatible server's, which has none.
    A plugin's backend decides for itself, when it is built."""
    return None if spec.base_url else BATCH_APIS.get(spec.provider)
