"""Anthropic's Message Batches API as a :class:`~pytest_skills.backends.batches.BatchClient`.

Each request of a batch carries exactly the parameters :class:`AnthropicBackend` would
send live (thinking in the form learned this run, else the one the model id says: a
batch cannot adapt to a 400), and each succeeded result is read by the same code as a
live answer, so a batch answer equals a live one. It is marked ``extra["batch"]`` (the
batch's id: the answer was batch-priced) and has no latency.

Results are read line by line from the stream (see :meth:`.SdkSession.lines`). The
backend hands this module what it needs (its SDK session, how it builds parameters and
reads answers), so this module does not import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pytest_skills.backends.base import BackendError, MalformedBodyError, shape, token_count
from pytest_skills.backends.batches import (
    BatchItem,
    BatchStatus,
    ItemState,
    SdkSession,
    one_line,
    record_custom_id,
    result_records,
    unreadable,
)
from pytest_skills.models import Request, Response

#: A message object (as the SDK builds it) read into a Response: (message, where, batch id).
ReadMessage = Callable[[Any, str, str], Response]

PROVIDER = "Anthropic"
#: What the API accepts as a custom_id (a cache key, 64 hex digits, always is).
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: The most requests one Message Batch may hold.
MAX_REQUESTS = 100_000
#: request_counts' fields: the shared names of BatchStatus.counts.
COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")
_STATES = {
    "succeeded": ItemState.SUCCEEDED,
    "errored": ItemState.ERRORED,
    "canceled": ItemState.CANCELED,
    "expired": ItemState.EXPIRED,
}


class AnthropicBatches:
    """The Message Batches API through ``session``; ``params``: what the backend would send
    live for a request; ``read``: how it reads a live answer."""

    def __init__(
        self,
        session: SdkSession,
        params: Callable[[Request], dict[str, Any]],
        read: ReadMessage,
    ) -> None:
        self._session, self._params, self._read = session, params, read

    def submit(self, requests: Sequence[tuple[str, Request]]) -> str:
        if not requests:
            raise BackendError(f"{PROVIDER}: a batch needs at least one request")
        if len(requests) > MAX_REQUESTS:
            raise BackendError(
                f"{PROVIDER}: a Message Batch holds at most {MAX_REQUESTS} requests, "
                f"not {len(requests)}: send them as several batches"
            )
        seen: set[str] = set()
        entries: list[Any] = []
        for custom_id, request in requests:
            if not CUSTOM_ID.match(custom_id):
                raise BackendError(
                    f"{PROVIDER}: custom_id {custom_id[:80]!r} is not 1 to 64 letters, digits, "
                    "'_' or '-', as the Message Batches API requires"
                )
            if custom_id in seen:
                raise BackendError(f"{PROVIDER}: custom_id {custom_id} is in the batch twice")
            seen.add(custom_id)
            entries.append({"custom_id": custom_id, "params": self._params(request)})
        batch = self._session.call(lambda client: client.messages.batches.create(requests=entries))
        batch_id = getattr(batch, "id", None)
        if not isinstance(batch_id, str) or not batch_id:
            raise BackendError(
                f"{PROVIDER}: the answer to creating a batch has no batch id ('id' is "
                f"{shape(batch_id)})"
            )
        return batch_id

    def status(self, batch_id: str) -> BatchStatus:
        batch = self._session.call(lambda client: client.messages.batches.retrieve(batch_id))
        return self._status(batch, batch_id)

    def cancel(self, batch_id: str) -> BatchStatus:
        batch = self._session.call(lambda client: client.messages.batches.cancel(batch_id))
        return self._status(batch, batch_id)

    def results(self, batch_id: str) -> Iterator[BatchItem]:
        lines = self._session.lines(
            lambda client: client.messages.batches.with_streaming_response.results(batch_id),
            batch_id,
        )
        for number, record in result_records(lines, batch_id):
            yield record if isinstance(record, BatchItem) else self._item(record, batch_id, number)

    def _item(self, record: Mapping[str, Any], batch_id: str, number: int) -> BatchItem:
        """One result line as an item; a line of the wrong shape as an ERRORED one."""
        custom_id = record_custom_id(record)
        if custom_id is None:
            shown = shape(record.get("custom_id"))
            return unreadable(batch_id, number, f"has no custom_id ('custom_id' is {shown})")
        result = record.get("result")
        kind = result.get("type") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(kind, str) or kind not in _STATES:
            what = f"'result.type' is {shape(kind)}" if isinstance(result, dict) else None
            return unreadable(
                batch_id,
                number,
                f"is not a result: {what or f'result is {shape(result)}'}",
                custom_id,
            )
        state = _STATES[kind]
        if state is ItemState.SUCCEEDED:
            return self._succeeded(result.get("message"), custom_id, batch_id)
        if state is ItemState.ERRORED:
            return BatchItem(custom_id, state, error=_error_text(result.get("error")))
        if state is ItemState.EXPIRED:
            return BatchItem(custom_id, state, error="expired: the batch ended before it was sent")
        return BatchItem(custom_id, state, error="canceled: the batch was canceled before it ran")

    def _succeeded(self, message: Any, custom_id: str, batch_id: str) -> BatchItem:
        where = f"request {custom_id} of batch {batch_id}"
        if not isinstance(message, dict):
            error = f"{PROVIDER}: the response for {where} is {shape(message)}, not a message"
            return BatchItem(custom_id, ItemState.ERRORED, error=error)
        try:
            # As the SDK builds a live answer from its JSON: without validation, so the
            # reading finds what is of the wrong shape, as it does for live answers.
            built = self._session.sdk.types.Message.construct(**message)
            response = self._read(built, where, batch_id)
        except BackendError as error:
            return BatchItem(custom_id, ItemState.ERRORED, error=error.message)
        except Exception as error:  # the SDK's builder, given untrusted JSON of any shape
            text = f"{PROVIDER}: the response for {where} cannot be read: {one_line(error)}"
            return BatchItem(custom_id, ItemState.ERRORED, error=text)
        return BatchItem(custom_id, ItemState.SUCCEEDED, response=response)

    @staticmethod
    def _status(batch: Any, batch_id: str) -> BatchStatus:
        processing = getattr(batch, "processing_status", None)
        counts_object = getattr(batch, "request_counts", None)
        try:
            if not isinstance(processing, str):
                raise MalformedBodyError(f"'processing_status' is {shape(processing)}")
            if counts_object is None or isinstance(counts_object, (str, int, float, list)):
                raise MalformedBodyError(f"'request_counts' is {shape(counts_object)}")
            counts = {
                name: token_count(counts_object, name, "request_counts", 0) for name in COUNTS
            }
        except MalformedBodyError as error:
            raise BackendError(
                f"{PROVIDER}: the status of batch {batch_id} is not a Message Batch: {error}"
            ) from None
        return BatchStatus(
            batch_id,
            ended=processing == "ended",
            counts={name: n for name, n in counts.items() if n},
        )


def _error_text(error: Any) -> str:
    """An errored result's error (``{"type": "error", "error": {"type", "message"}}``) as
    one line: its type and message."""
    inner = error.get("error") if isinstance(error, dict) else None
    if not isinstance(inner, dict):
        return f"errored, with an error of the wrong shape ({shape(error)})"
    kind = inner.get("type")
    message = inner.get("message")
    return one_line(f"{kind if isinstance(kind, str) else 'error'}: {message}")
