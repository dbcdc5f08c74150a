"""The batch endpoints of the loopback server, as the providers document them.

Anthropic Message Batches: ``POST /v1/messages/batches``, ``GET .../{id}``, ``GET
.../{id}/results`` (JSONL, at the batch's ``results_url``), ``POST .../{id}/cancel``.
OpenAI Batch API: ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET
/v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``, ``POST
/v1/batches/{id}/cancel``; results in an output file and an error file.

Batches stay in progress until the test ends them (:meth:`BatchEndpoints.end`, or
:meth:`BatchEndpoints.end_after` a number of status requests, so a poll loop is tested
without timing). Each succeeded request is answered by the server's live code path, so a
batch answer equals a live one; batch requests are not in ``server.calls`` (live calls
only) but in ``server.batches``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.loopback import _error, _parse_call, _Reply
from tests.loopback_batch_formats import (
    CUSTOM_ID,
    ENDPOINT,
    ERRORED_MESSAGE,
    OUTCOMES,
    Batch,
    SubmittedBatch,
    anthropic_object,
    input_lines,
    jsonl,
    multipart,
    openai_object,
    parse_json,
    result_line,
)

if TYPE_CHECKING:
    from tests.loopback import LoopbackServer

__all__ = ["OUTCOMES", "BatchEndpoints", "Outcome", "SubmittedBatch"]

#: What a test makes of a request: ``outcome(custom_id, index)`` is one of OUTCOMES.
Outcome = Callable[[str, int], str]


class BatchEndpoints:
    """The batch endpoints' state, thread-safe; one per :class:`LoopbackServer`."""

    def __init__(self, server: LoopbackServer) -> None:
        self._server = server
        self._lock = threading.RLock()
        self._batches: dict[str, Batch] = {}
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._ids = itertools.count(1)
        self._auto: tuple[int, Outcome | None] | None = None

    # -- test control -----------------------------------------------------------------

    def submitted(self) -> list[SubmittedBatch]:
        with self._lock:
            return [
                SubmittedBatch(b.id, b.api, tuple(b.requests), b.status)
                for b in self._batches.values()
            ]

    def end(self, outcome: Outcome | None = None, batch_id: str | None = None) -> None:
        with self._lock:
            if batch_id is not None and batch_id not in self._batches:
                raise KeyError(f"no batch {batch_id}")
            for batch in list(self._batches.values()):
                if batch.open and batch_id in (None, batch.id):
                    self._end(batch, outcome)

    def end_after(self, polls: int | None, outcome: Outcome | None = None) -> None:
        with self._lock:
            self._auto = None if polls is None else (polls, outcome)

    def add_result_lines(self, batch_id: str, lines: list[str]) -> None:
        """Append raw lines (malformed ones, say) to an ended batch's results: Anthropic's
        results file, or OpenAI's output file."""
        with self._lock:
            batch = self._batches[batch_id]
            if batch.open:
                raise ValueError(f"batch {batch_id} has not ended")
            if batch.api == "anthropic":
                batch.lines.extend(lines)
                return
            if batch.output_file_id is None:
                batch.output_file_id = self._store("batch_output", "output.jsonl", b"")
            meta, data = self._files[batch.output_file_id]
            data += "".join(line + "\n" for line in lines).encode()
            self._files[batch.output_file_id] = ({**meta, "bytes": len(data)}, data)

    # -- routing (handler threads) -----------------------------------------------------

    def handle(self, method: str, route: str, raw: bytes, headers: dict[str, str]) -> _Reply | None:
        parts = route.strip("/").split("/")
        if parts[:3] == ["v1", "messages", "batches"]:
            api, rest = "anthropic", parts[3:]
        elif parts[:2] in (["v1", "batches"], ["v1", "files"]):
            api, rest = "openai", parts[1:]
        else:
            return None
        failed = self._server._failure_reply(api)
        if failed is not None:
            return failed
        if not (headers.get("x-api-key") or headers.get("authorization")):
            return _error(api, 401, "authentication: an API key is required")
        with self._lock:
            if api == "anthropic":
                return self._anthropic(method, rest, raw, headers)
            return self._openai(method, rest, raw, headers)

    def _anthropic(
        self, method: str, rest: list[str], raw: bytes, headers: dict[str, str]
    ) -> _Reply | None:
        if method == "POST" and not rest:
            return self._anthropic_create(raw, headers)
        batch = self._batches.get(rest[0]) if rest else None
        if batch is None or batch.api != "anthropic":
            return _error("anthropic", 404, f"message batch {rest[:1]} not found") if rest else None
        if method == "GET" and len(rest) == 1:
            self._poll(batch)
            return _Reply(200, anthropic_object(batch, self._server.url), {})
        if method == "GET" and rest[1:] == ["results"]:
            if batch.open:
                return _error("anthropic", 400, f"message batch {batch.id} has not ended")
            data = "".join(line + "\n" for line in batch.lines).encode()
            return _Reply(200, {}, {}, raw=data, content_type="application/binary")
        if method == "POST" and rest[1:] == ["cancel"]:
            if batch.status == "in_progress":
                batch.status, batch.cancel_at = "canceling", time.time()
            return _Reply(200, anthropic_object(batch, self._server.url), {})
        return None

    def _anthropic_create(self, raw: bytes, headers: dict[str, str]) -> _Reply:
        body = parse_json(raw)
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _error("anthropic", 400, "requests: a non-empty list is required")
        entries: list[tuple[str, dict[str, Any]]] = []
        for index, entry in enumerate(requests):
            custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
            params = entry.get("params") if isinstance(entry, dict) else None
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                return _error("anthropic", 400, f"requests.{index}.custom_id: invalid")
            if not isinstance(params, dict):
                return _error("anthropic", 400, f"requests.{index}.params: an object is required")
            if any(custom_id == seen for seen, _ in entries):
                return _error("anthropic", 400, f"requests.{index}.custom_id: not unique")
            entries.append((custom_id, params))
        batch = Batch(
            f"msgbatch_loopback{next(self._ids):06d}", "anthropic", entries, headers, "in_progress"
        )
        self._batches[batch.id] = batch
        return _Reply(200, anthropic_object(batch, self._server.url), {})

    def _openai(
        self, method: str, rest: list[str], raw: bytes, headers: dict[str, str]
    ) -> _Reply | None:
        if rest[0] == "files":
            if method == "POST" and len(rest) == 1:
                return self._upload(raw, headers)
            stored = self._files.get(rest[1]) if len(rest) > 1 else None
            if stored is None:
                return (
                    _error("openai", 404, f"No such File object: {rest[1:2]}") if rest[1:] else None
                )
            if method == "GET" and len(rest) == 2:
                return _Reply(200, stored[0], {})
            if method == "GET" and rest[2:] == ["content"]:
                return _Reply(200, {}, {}, raw=stored[1], content_type="application/octet-stream")
            return None
        if method == "POST" and len(rest) == 1:
            return self._openai_create(raw, headers)
        batch = self._batches.get(rest[1]) if len(rest) > 1 else None
        if batch is None or batch.api != "openai":
            return (
                _error("openai", 404, f"No batch found with id {rest[1:2]}") if rest[1:] else None
            )
        if method == "GET" and len(rest) == 2:
            self._poll(batch)
            return _Reply(200, openai_object(batch), {})
        if method == "POST" and rest[2:] == ["cancel"]:
            if batch.status == "in_progress":
                batch.status, batch.cancel_at = "cancelling", time.time()
            return _Reply(200, openai_object(batch), {})
        return None

    def _upload(self, raw: bytes, headers: dict[str, str]) -> _Reply:
        fields = multipart(raw, headers.get("content-type", ""))
        if fields.get("purpose", (None, b""))[1] != b"batch" or "file" not in fields:
            return _error(
                "openai", 400, "a file, and purpose 'batch', are required", param="purpose"
            )
        filename, data = fields["file"]
        file_id = self._store("batch", filename or "upload.jsonl", data)
        return _Reply(200, self._files[file_id][0], {})

    def _store(self, purpose: str, filename: str, data: bytes) -> str:
        file_id = f"file-loopback{next(self._ids):06d}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self._files[file_id] = (meta, data)
        return file_id

    def _openai_create(self, raw: bytes, headers: dict[str, str]) -> _Reply:
        body = parse_json(raw)
        if not isinstance(body, dict):
            return _error("openai", 400, "The request body must be a JSON object.")
        if body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
            return _error("openai", 400, "endpoint and completion_window are invalid")
        stored = self._files.get(str(body.get("input_file_id")))
        if stored is None:
            return _error("openai", 404, f"No such File object: {body.get('input_file_id')}")
        entries, errors = input_lines(stored[1])
        batch = Batch(
            f"batch_loopback{next(self._ids):06d}",
            "openai",
            entries,
            headers,
            "failed" if errors else "in_progress",
        )
        batch.input_file_id, batch.errors = str(body["input_file_id"]), errors
        self._batches[batch.id] = batch
        return _Reply(200, openai_object(batch), {})

    # -- ending ------------------------------------------------------------------------

    def _poll(self, batch: Batch) -> None:
        batch.polls += 1
        if self._auto is not None and batch.open and batch.polls >= self._auto[0]:
            self._end(batch, self._auto[1])

    def _end(self, batch: Batch, outcome: Outcome | None) -> None:
        """Decide every request's fate, answer the succeeded ones as live calls are."""
        output: list[str] = []
        errors: list[str] = []
        counts = dict.fromkeys(OUTCOMES, 0)
        for index, (custom_id, params) in enumerate(batch.requests):
            fate = outcome(custom_id, index) if outcome else None
            fate = fate or ("canceled" if batch.canceling else "succeeded")
            if fate not in OUTCOMES:
                raise ValueError(f"outcome {fate!r} is not one of {OUTCOMES}")
            reply = None
            if fate == "succeeded":
                reply = self._server._answer(_parse_call(batch.api, params, batch.headers))
                if reply.status != 200:
                    fate = "errored"  # refused as the live API would refuse it
            elif fate == "errored":
                reply = _error(batch.api, 400, ERRORED_MESSAGE)
            counts[fate] += 1
            line = result_line(batch.api, custom_id, fate, reply, index)
            (output if fate == "succeeded" or batch.api == "anthropic" else errors).append(line)
        batch.counts, batch.ended_at = counts, time.time()
        if batch.api == "anthropic":
            batch.status, batch.lines = "ended", output
            return
        if output:
            batch.output_file_id = self._store("batch_output", "output.jsonl", jsonl(output))
        if errors:
            batch.error_file_id = self._store("batch_output", "errors.jsonl", jsonl(errors))
        batch.status = (
            "cancelled"
            if batch.canceling or counts["canceled"]
            else "expired"
            if counts["expired"]
            else "completed"
        )
