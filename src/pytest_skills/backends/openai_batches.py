"""OpenAI's Batch API as a :class:`~pytest_skills.backends.batches.BatchClient`, and the
batch file format it shares with vLLM's ``run-batch``.

A batch is a JSONL file of requests (``custom_id``, ``method``, ``url``, ``body``),
uploaded through the Files API, then named in ``POST /v1/batches``. Each body is exactly
what :class:`OpenAIBackend` would send live (:func:`chat_body`, with the adaptations
learned this run), and each answer is read by the same code as a live one, so a batch
answer equals a live one; it is marked ``extra["batch"]`` (the batch's id: the answer
was batch-priced) and has no latency. Failed requests come back in a second file, the
error file.

The pure functions (:func:`batch_lines`, :func:`chat_body`, :func:`read_batch_output`)
need no key and no server: vLLM's ``run-batch`` reads and writes exactly this format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from pytest_skills.backends.openai_wire import PROVIDER, chat_body, completion_response
from pytest_skills.models import Request

__all__ = ["ENDPOINT", "OpenAIBatches", "batch_lines", "chat_body", "read_batch_output"]

ENDPOINT = "/v1/chat/completions"
#: The most requests, and bytes, one batch's input file may hold.
MAX_REQUESTS = 50_000
MAX_INPUT_BYTES = 200 * 2**20
#: Batch states after which nothing more happens.
ENDED = ("completed", "failed", "expired", "cancelled")
#: What the rest of a batch's requests became, by the state it ended in.
_REST = {"expired": "expired", "cancelled": "canceled", "failed": "errored"}
_ITEM_ERRORS = {"batch_expired": ItemState.EXPIRED, "batch_cancelled": ItemState.CANCELED}


def batch_lines(items: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """The JSONL text of a batch: one line per ``(custom_id, body)``, for Chat Completions."""
    return "".join(
        json.dumps(
            {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body},
            ensure_ascii=False,
        )
        + "\n"
        for custom_id, body in items
    )


def read_batch_output(text: str, batch_id: str) -> Iterator[BatchItem]:
    """The items of a batch's output or error file (OpenAI's, or vLLM ``run-batch``'s).
    A line of the wrong shape is an ERRORED item saying what is wrong."""
    return _items(text.splitlines(), batch_id, _completion_type())


def _items(lines: Iterable[str], batch_id: str, kind: type) -> Iterator[BatchItem]:
    for number, record in result_records(lines, batch_id):
        yield record if isinstance(record, BatchItem) else _item(record, batch_id, number, kind)


class OpenAIBatches:
    """The Batch API of the official OpenAI API through ``session``; ``body``: what the
    backend would send live for a request (with what it learned this run)."""

    def __init__(self, session: SdkSession, body: Callable[[Request], dict[str, Any]]) -> None:
        self._session, self._body = session, body

    def submit(self, requests: Sequence[tuple[str, Request]]) -> str:
        if not requests:
            raise BackendError(f"{PROVIDER}: a batch needs at least one request")
        if len(requests) > MAX_REQUESTS:
            raise BackendError(
                f"{PROVIDER}: a batch holds at most {MAX_REQUESTS} requests, not "
                f"{len(requests)}: send them as several batches"
            )
        ids = [custom_id for custom_id, _ in requests]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise BackendError(f"{PROVIDER}: custom_id {twice[:80]} is in the batch twice")
        text = batch_lines((custom_id, self._body(request)) for custom_id, request in requests)
        data = text.encode("utf-8")
        if len(data) > MAX_INPUT_BYTES:
            raise BackendError(
                f"{PROVIDER}: the batch file is {len(data) // 2**20} MB, over the "
                f"{MAX_INPUT_BYTES // 2**20} MB a batch may hold: send it as several batches"
            )
        upload = self._call(
            lambda client: client.files.create(
                file=("pytest-skills-batch.jsonl", data, "application/jsonl"), purpose="batch"
            )
        )
        file_id = _text_field(upload, "id", "the answer to the file upload")
        batch = self._call(
            lambda client: client.batches.create(
                input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h"
            )
        )
        return _text_field(batch, "id", "the answer to creating a batch")

    def status(self, batch_id: str) -> BatchStatus:
        batch = self._call(lambda client: client.batches.retrieve(batch_id))
        return _status(batch, batch_id)

    def cancel(self, batch_id: str) -> BatchStatus:
        batch = self._call(lambda client: client.batches.cancel(batch_id))
        return _status(batch, batch_id)

    def results(self, batch_id: str) -> Iterator[BatchItem]:
        session = self._session
        batch = self._call(lambda client: client.batches.retrieve(batch_id))
        status = getattr(batch, "status", None)
        if status not in ENDED:
            raise BackendError(
                f"{PROVIDER}: batch {batch_id} has not ended (its status is {shape(status)}): "
                "its results cannot be read yet"
            )
        files = [getattr(batch, name, None) for name in ("output_file_id", "error_file_id")]
        if status == "failed" and not any(files):
            # Refused as a whole (its file did not validate): every request failed alike.
            yield from self._refused(batch, batch_id)
            return
        kind = session.sdk.types.chat.ChatCompletion
        for file_id in files:
            if isinstance(file_id, str) and file_id:
                yield from _items(self._file_lines(file_id, batch_id), batch_id, kind)

    def _file_lines(self, file_id: str, batch_id: str) -> Iterator[str]:
        return self._session.lines(
            lambda client: client.files.with_streaming_response.content(file_id), batch_id
        )

    def _refused(self, batch: Any, batch_id: str) -> Iterator[BatchItem]:
        """An ERRORED item for every request of a batch refused as a whole, from its
        input file, with the reasons the batch gives."""
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        reasons = "; ".join(
            one_line(f"line {getattr(e, 'line', '?')}: {getattr(e, 'message', e)}")
            for e in errors[:3]
        )
        reason = f"the batch was refused: {reasons or 'no reason given'}"
        input_id = getattr(batch, "input_file_id", None)
        if not isinstance(input_id, str) or not input_id:
            yield BatchItem("", ItemState.ERRORED, error=f"batch {batch_id}: {reason}")
            return
        for _number, record in result_records(self._file_lines(input_id, batch_id), batch_id):
            if isinstance(record, BatchItem):
                continue  # our own file: a line without a custom_id answers no request
            custom_id = record_custom_id(record)
            if custom_id is not None:
                yield BatchItem(custom_id, ItemState.ERRORED, error=reason)

    def _call(self, action: Callable[[Any], Any]) -> Any:
        return self._session.call(action)


def _completion_type() -> type:
    try:
        import openai
    except ImportError:
        raise BackendError(
            'reading a batch\'s output needs the openai package: pip install "pytest-skills"'
        ) from None
    return openai.types.chat.ChatCompletion  # type: ignore[no-any-return]


def _item(record: Mapping[str, Any], batch_id: str, number: int, kind: type) -> BatchItem:
    """One output or error line as an item; a line of the wrong shape as an ERRORED one."""
    custom_id = record_custom_id(record)
    if custom_id is None:
        shown = shape(record.get("custom_id"))
        return unreadable(batch_id, number, f"has no custom_id ('custom_id' is {shown})")
    error = record.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        state = _ITEM_ERRORS.get(code, ItemState.ERRORED) if isinstance(code, str) else None
        text = one_line(f"{code or 'error'}: {error.get('message')}")
        return BatchItem(custom_id, state or ItemState.ERRORED, error=text)
    response = record.get("response")
    if not isinstance(response, dict):
        problem = f"is not a result: 'response' is {shape(response)}"
        return unreadable(batch_id, number, problem, custom_id)
    status, body = response.get("status_code"), response.get("body")
    if not isinstance(status, int) or isinstance(status, bool):
        problem = f"is not a result: 'response.status_code' is {shape(status)}"
        return unreadable(batch_id, number, problem, custom_id)
    if status != 200:
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        text = f"{PROVIDER} {status}: {message}" if message else f"{PROVIDER} {status}, unexplained"
        return BatchItem(custom_id, ItemState.ERRORED, error=one_line(text))
    where = f"request {custom_id} of batch {batch_id}"
    if not isinstance(body, dict):
        text = f"{PROVIDER}: the response for {where} is {shape(body)}, not a chat completion"
        return BatchItem(custom_id, ItemState.ERRORED, error=text)
    try:
        # As the SDK builds a live answer from its JSON: without validation, so the
        # reading below finds what is of the wrong shape, as it does for live ones.
        completion = kind.construct(**body)  # type: ignore[attr-defined]
        answer = completion_response(
            completion, where, kind=kind, latency=0.0, extra={"batch": batch_id}
        )
    except BackendError as error:
        return BatchItem(custom_id, ItemState.ERRORED, error=error.message)
    except Exception as error:  # the SDK's builder, given untrusted JSON of any shape
        text = f"{PROVIDER}: the response for {where} cannot be read: {one_line(error)}"
        return BatchItem(custom_id, ItemState.ERRORED, error=text)
    return BatchItem(custom_id, ItemState.SUCCEEDED, response=answer)


def _status(batch: Any, batch_id: str) -> BatchStatus:
    """The batch's state in the shared names: OpenAI counts completed and failed requests;
    the rest are processing, or, once the batch ended, what its end made of them."""
    status = getattr(batch, "status", None)
    counts_object = getattr(batch, "request_counts", None)
    if not isinstance(status, str):
        raise BackendError(
            f"{PROVIDER}: the status of batch {batch_id} is not a batch: 'status' is "
            f"{shape(status)}"
        )
    try:
        total, completed, failed = (
            token_count(counts_object, name, "request_counts", 0)
            for name in ("total", "completed", "failed")
        )
    except MalformedBodyError as error:
        raise BackendError(
            f"{PROVIDER}: the status of batch {batch_id} is not a batch: {one_line(error)}"
        ) from None
    ended = status in ENDED
    rest = max(total - completed - failed, 0)
    rest_name = _REST.get(status, "errored") if ended else "processing"
    merged: dict[str, int] = {}
    for name, n in (("succeeded", completed), ("errored", failed), (rest_name, rest)):
        if n:
            merged[name] = merged.get(name, 0) + n
    return BatchStatus(batch_id, ended=ended, counts=merged)


def _text_field(obj: Any, name: str, what: str) -> str:
    value = getattr(obj, name, None)
    if not isinstance(value, str) or not value:
        raise BackendError(f"{PROVIDER}: {what} has no {name!r} ({shape(value)})")
    return value
