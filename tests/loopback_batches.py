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
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

from tests.loopback import _error, _parse_call, _Reply

if TYPE_CHECKING:
    from tests.loopback import LoopbackServer

__all__ = ["OUTCOMES", "BatchEndpoints", "Outcome", "SubmittedBatch"]

#: What a test makes of a request: ``outcome(custom_id, index)`` is one of OUTCOMES.
Outcome = Callable[[str, int], str]
OUTCOMES = ("succeeded", "errored", "expired", "canceled")

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ENDPOINT = "/v1/chat/completions"
_ANTHROPIC_OPEN = ("in_progress", "canceling")
_OPENAI_OPEN = ("validating", "in_progress", "finalizing", "cancelling")
_ERRORED_MESSAGE = "The request was refused while the batch was processed."
_EXPIRED = "This request could not be executed before the completion window expired."
_CANCELLED = "This request was not executed because the batch was cancelled."


@dataclass(frozen=True)
class SubmittedBatch:
    """A batch as the server received it: its requests (custom_id, params or body)."""

    id: str
    api: str  # "anthropic" | "openai"
    requests: tuple[tuple[str, dict[str, Any]], ...]
    status: str  # in the provider's own words

    @property
    def custom_ids(self) -> tuple[str, ...]:
        return tuple(custom_id for custom_id, _ in self.requests)

    @property
    def models(self) -> frozenset[str]:
        return frozenset(str(body.get("model")) for _, body in self.requests)


@dataclass
class _Batch:
    id: str
    api: str
    requests: list[tuple[str, dict[str, Any]]]
    headers: dict[str, str]
    status: str
    created: float = field(default_factory=time.time)
    polls: int = 0
    #: Anthropic: the result lines; OpenAI: in its output and error files.
    lines: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    ended_at: float | None = None
    cancel_at: float | None = None

    @property
    def open(self) -> bool:
        return self.status in (_ANTHROPIC_OPEN if self.api == "anthropic" else _OPENAI_OPEN)

    @property
    def canceling(self) -> bool:
        return self.status in ("canceling", "cancelling")


class BatchEndpoints:
    """The batch endpoints' state, thread-safe; one per :class:`LoopbackServer`."""

    def __init__(self, server: LoopbackServer) -> None:
        self._server = server
        self._lock = threading.RLock()
        self._batches: dict[str, _Batch] = {}
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
            return _Reply(200, self._anthropic_object(batch), {})
        if method == "GET" and rest[1:] == ["results"]:
            if batch.open:
                return _error("anthropic", 400, f"message batch {batch.id} has not ended")
            data = "".join(line + "\n" for line in batch.lines).encode()
            return _Reply(200, {}, {}, raw=data, content_type="application/binary")
        if method == "POST" and rest[1:] == ["cancel"]:
            if batch.status == "in_progress":
                batch.status, batch.cancel_at = "canceling", time.time()
            return _Reply(200, self._anthropic_object(batch), {})
        return None

    def _anthropic_create(self, raw: bytes, headers: dict[str, str]) -> _Reply:
        body = _json(raw)
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _error("anthropic", 400, "requests: a non-empty list is required")
        entries: list[tuple[str, dict[str, Any]]] = []
        for index, entry in enumerate(requests):
            custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
            params = entry.get("params") if isinstance(entry, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                return _error("anthropic", 400, f"requests.{index}.custom_id: invalid")
            if not isinstance(params, dict):
                return _error("anthropic", 400, f"requests.{index}.params: an object is required")
            if any(custom_id == seen for seen, _ in entries):
                return _error("anthropic", 400, f"requests.{index}.custom_id: not unique")
            entries.append((custom_id, params))
        batch = _Batch(
            f"msgbatch_loopback{next(self._ids):06d}", "anthropic", entries, headers, "in_progress"
        )
        self._batches[batch.id] = batch
        return _Reply(200, self._anthropic_object(batch), {})

    def _anthropic_object(self, batch: _Batch) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if batch.open:
            counts["processing"] = len(batch.requests)
        else:
            counts.update(batch.counts)
        ended = not batch.open
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + 86400),
            "ended_at": _iso(batch.ended_at) if batch.ended_at else None,
            "cancel_initiated_at": _iso(batch.cancel_at) if batch.cancel_at else None,
            "archived_at": None,
            "results_url": f"{self._server.url}/v1/messages/batches/{batch.id}/results"
            if ended
            else None,
        }

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
            return _Reply(200, self._openai_object(batch), {})
        if method == "POST" and rest[2:] == ["cancel"]:
            if batch.status == "in_progress":
                batch.status, batch.cancel_at = "cancelling", time.time()
            return _Reply(200, self._openai_object(batch), {})
        return None

    def _upload(self, raw: bytes, headers: dict[str, str]) -> _Reply:
        fields = _multipart(raw, headers.get("content-type", ""))
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
        body = _json(raw)
        if not isinstance(body, dict):
            return _error("openai", 400, "The request body must be a JSON object.")
        if body.get("endpoint") != _ENDPOINT or body.get("completion_window") != "24h":
            return _error("openai", 400, "endpoint and completion_window are invalid")
        stored = self._files.get(str(body.get("input_file_id")))
        if stored is None:
            return _error("openai", 404, f"No such File object: {body.get('input_file_id')}")
        entries, errors = _input_lines(stored[1])
        batch = _Batch(
            f"batch_loopback{next(self._ids):06d}",
            "openai",
            entries,
            headers,
            "failed" if errors else "in_progress",
        )
        batch.input_file_id, batch.errors = str(body["input_file_id"]), errors
        self._batches[batch.id] = batch
        return _Reply(200, self._openai_object(batch), {})

    def _openai_object(self, batch: _Batch) -> dict[str, Any]:
        failed = batch.status == "failed"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": _ENDPOINT,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created),
            "expires_at": int(batch.created) + 86400,
            "cancelling_at": int(batch.cancel_at) if batch.cancel_at else None,
            "request_counts": {
                "total": 0 if failed else len(batch.requests),
                "completed": batch.counts.get("succeeded", 0),
                "failed": batch.counts.get("errored", 0),
            },
            "metadata": None,
        }

    # -- ending ------------------------------------------------------------------------

    def _poll(self, batch: _Batch) -> None:
        batch.polls += 1
        if self._auto is not None and batch.open and batch.polls >= self._auto[0]:
            self._end(batch, self._auto[1])

    def _end(self, batch: _Batch, outcome: Outcome | None) -> None:
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
                reply = _error(batch.api, 400, _ERRORED_MESSAGE)
            counts[fate] += 1
            line = _result_line(batch.api, custom_id, fate, reply, index)
            (output if fate == "succeeded" or batch.api == "anthropic" else errors).append(line)
        batch.counts, batch.ended_at = counts, time.time()
        if batch.api == "anthropic":
            batch.status, batch.lines = "ended", output
            return
        if output:
            batch.output_file_id = self._store("batch_output", "output.jsonl", _jsonl(output))
        if errors:
            batch.error_file_id = self._store("batch_output", "errors.jsonl", _jsonl(errors))
        batch.status = (
            "cancelled"
            if batch.canceling or counts["canceled"]
            else "expired"
            if counts["expired"]
            else "completed"
        )


def _result_line(api: str, custom_id: str, fate: str, reply: _Reply | None, index: int) -> str:
    if api == "anthropic":
        result: dict[str, Any] = {"type": fate}
        if reply is not None:
            result["message" if fate == "succeeded" else "error"] = reply.payload
        return json.dumps({"custom_id": custom_id, "result": result})
    line: dict[str, Any] = {"id": f"batch_req_{index:06d}", "custom_id": custom_id}
    if reply is not None:
        request_id = reply.headers.get("x-request-id", f"req_batch_{index:06d}")
        line["response"] = {
            "status_code": reply.status,
            "request_id": request_id,
            "body": reply.payload,
        }
        line["error"] = None
    else:
        code, message = (
            ("batch_expired", _EXPIRED) if fate == "expired" else ("batch_cancelled", _CANCELLED)
        )
        line["response"], line["error"] = None, {"code": code, "message": message}
    return json.dumps(line)


def _input_lines(data: bytes) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """The requests of an OpenAI batch file, or the errors that fail the batch."""
    entries: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        record = _json(line.encode())
        body = record.get("body") if isinstance(record, dict) else None
        custom_id = record.get("custom_id") if isinstance(record, dict) else None
        problem = None
        if not isinstance(record, dict) or not isinstance(body, dict):
            problem = "invalid_json_line", "This line is not a JSON object with a body."
        elif record.get("method") != "POST" or record.get("url") != _ENDPOINT:
            problem = "invalid_url", f"The url must be {_ENDPOINT}, with method POST."
        elif not isinstance(custom_id, str) or any(custom_id == c for c, _ in entries):
            problem = "duplicate_custom_id", "The custom_id is missing or not unique."
        if problem is not None:
            errors.append(
                {"code": problem[0], "message": problem[1], "line": number, "param": None}
            )
        else:
            entries.append((str(custom_id), dict(body or {})))
    if not entries and not errors:
        errors.append(
            {
                "code": "empty_file",
                "message": "The file has no requests.",
                "line": None,
                "param": None,
            }
        )
    return entries, errors


def _multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, content)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename(), payload)
    return fields


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def _jsonl(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).isoformat().replace("+00:00", "Z")
