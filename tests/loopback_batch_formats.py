"""The loopback's batch objects and files, in the providers' formats (see
:mod:`tests.loopback_batches` for the endpoints that serve them)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.loopback import _Reply

OUTCOMES = ("succeeded", "errored", "expired", "canceled")
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ENDPOINT = "/v1/chat/completions"
ANTHROPIC_OPEN = ("in_progress", "canceling")
OPENAI_OPEN = ("validating", "in_progress", "finalizing", "cancelling")
ERRORED_MESSAGE = "The request was refused while the batch was processed."
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
class Batch:
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
        return self.status in (ANTHROPIC_OPEN if self.api == "anthropic" else OPENAI_OPEN)

    @property
    def canceling(self) -> bool:
        return self.status in ("canceling", "cancelling")


def anthropic_object(batch: Batch, base_url: str) -> dict[str, Any]:
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
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def openai_object(batch: Batch) -> dict[str, Any]:
    failed = batch.status == "failed"
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": ENDPOINT,
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


def result_line(api: str, custom_id: str, fate: str, reply: _Reply | None, index: int) -> str:
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


def input_lines(data: bytes) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """The requests of an OpenAI batch file, or the errors that fail the batch."""
    entries: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        record = parse_json(line.encode())
        body = record.get("body") if isinstance(record, dict) else None
        custom_id = record.get("custom_id") if isinstance(record, dict) else None
        problem = None
        if not isinstance(record, dict) or not isinstance(body, dict):
            problem = "invalid_json_line", "This line is not a JSON object with a body."
        elif record.get("method") != "POST" or record.get("url") != ENDPOINT:
            problem = "invalid_url", f"The url must be {ENDPOINT}, with method POST."
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


def multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
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


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def jsonl(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).isoformat().replace("+00:00", "Z")
