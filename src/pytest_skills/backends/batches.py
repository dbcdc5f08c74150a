"""Provider batch APIs: many requests sent as one job, answered within a day at half price.

A backend that has one exposes it as its ``batches`` attribute (a :class:`BatchClient`);
one that has none (a local model, a generic OpenAI-compatible server) has no such
attribute, or None, and its calls run live. Requests travel with a ``custom_id``: the
request's cache key, so results land in the cache under the key they answer.

Results come from the provider and are untrusted: a line of the wrong shape becomes an
``ERRORED`` item that says what was wrong (see :func:`unreadable`), never an exception.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from pytest_skills.backends.base import BackendError, body_excerpt, shape
from pytest_skills.backends.transport import MAX_RESPONSE_BYTES, http_client, http_module
from pytest_skills.models import ModelSpec, Request, Response

#: The built-in providers' batch APIs.
BATCH_APIS = {"anthropic": "Anthropic Message Batches", "openai": "OpenAI Batch API"}

#: The most of one batch's results read: the larger of the providers' limits on a
#: batch's input (Anthropic 256 MB, OpenAI 200 MB), as results are of the same order.
MAX_RESULTS_BYTES = 256 * 2**20
#: The longest result line read: one answer, as large as a live body may be.
MAX_LINE_CHARS = MAX_RESPONSE_BYTES
#: The least time given to reading a results file: it may hold thousands of answers, and
#: the call timeout is sized for one.
MIN_RESULTS_TIMEOUT = 600.0


class ItemState(enum.Enum):
    """How one request of a batch ended, in the providers' shared vocabulary."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    EXPIRED = "expired"
    CANCELED = "canceled"


@dataclass(frozen=True)
class BatchItem:
    """One request's result: a response when it succeeded, else why not (one line).

    An empty ``custom_id`` marks a result line that names no request (malformed): it
    answers nothing, and ``error`` says which line of which batch and what was wrong.
    """

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


def unreadable(batch_id: str, number: int, problem: str, custom_id: str = "") -> BatchItem:
    """An ERRORED item for result line ``number`` of ``batch_id``, of the wrong shape."""
    return BatchItem(
        custom_id,
        ItemState.ERRORED,
        error=f"line {number} of the results of batch {batch_id} {problem}",
    )


def one_line(text: object) -> str:
    """A provider's error text as one short line (it is untrusted and may be long)."""
    return body_excerpt(str(text)) or "(no message)"


def result_records(
    lines: Iterable[str], batch_id: str
) -> Iterator[tuple[int, dict[str, Any] | BatchItem]]:
    """Each non-blank line's number and JSON object, or the ERRORED item saying why the
    line is not one."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            mb = MAX_LINE_CHARS // 2**20
            yield number, unreadable(batch_id, number, f"is longer than {mb} MB: not read")
            continue
        try:
            record = json.loads(line)
        except ValueError:
            yield number, unreadable(batch_id, number, "is not JSON")
            continue
        if not isinstance(record, dict):
            yield number, unreadable(batch_id, number, f"is {shape(record)}, not an object")
            continue
        yield number, record


def record_custom_id(record: Mapping[str, Any]) -> str | None:
    """The line's ``custom_id`` if it is a non-empty string of at most 64 characters
    (both providers' limit, and a cache key's length), else None."""
    custom_id = record.get("custom_id")
    if isinstance(custom_id, str) and 0 < len(custom_id) <= 64 and custom_id.isprintable():
        return custom_id
    return None


_T = TypeVar("_T")


@dataclass(frozen=True)
class SdkSession:
    """What a batch client needs of its backend: the SDK module, its client, the timeout,
    and the backend's translation of SDK exceptions into one-line BackendErrors."""

    provider: str
    sdk: Any
    client: Any
    timeout: float
    error: Callable[[Exception], BackendError]
    #: The SDK's base exception (``anthropic.AnthropicError``, ``openai.OpenAIError``).
    base_error: type[Exception]

    def call(self, action: Callable[[Any], _T]) -> _T:
        """``action(client)``, its SDK exceptions as BackendErrors."""
        try:
            return action(self.client)
        except self.base_error as error:
            raise self.error(error) from None

    def lines(self, open_stream: Callable[[Any], Any], batch_id: str) -> Iterator[str]:
        """The lines of a results file that ``open_stream(client)`` (a
        ``with_streaming_response`` call) streams, read through a copy of the client (same
        key, base URL and headers) that reads up to :data:`MAX_RESULTS_BYTES` rather than
        one answer's worth, within :data:`MIN_RESULTS_TIMEOUT` at least."""
        hx = http_module(self.sdk)
        timeout = max(self.timeout, MIN_RESULTS_TIMEOUT)
        client = self.client.with_options(
            http_client=http_client(self.sdk, timeout, MAX_RESULTS_BYTES), timeout=timeout
        )
        try:
            with open_stream(client) as response:
                yield from response.iter_lines()
        except self.base_error as error:
            raise self.error(error) from None
        except hx.HTTPError as error:
            # Raised while the stream is read, past the SDK: a timeout, a refused body.
            raise BackendError(
                f"{self.provider}: reading the results of batch {batch_id} failed: "
                f"{one_line(error)}"
            ) from None
        finally:
            client.close()


def batch_api(spec: ModelSpec) -> str | None:
    """The batch API a built-in backend sends ``spec``'s calls to, or None (they run
    live): a model with a base URL of its own is a compatible server's, which has none.
    A plugin's backend decides for itself, when it is built."""
    return None if spec.base_url else BATCH_APIS.get(spec.provider)
