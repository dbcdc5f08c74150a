"""A loopback HTTP server that speaks the Anthropic Messages and OpenAI Chat Completions
wire formats, so tests can drive the real SDKs (``base_url`` pointed here) without a
network, a key, or a monkeypatched client.

    with LoopbackServer() as server:
        spec = ModelSpec("haiku", "anthropic", "claude-haiku-4-5", base_url=server.url)
        ...
        server.fail_next(429, retry_after=1.5)     # the next request gets a rate limit
        assert server.calls[-1].system == "..."    # what the SDK actually sent

Answers are deterministic: the default responder echoes the prompt and the first line
of the system prompt, and token counts are word counts. Prompt caching is emulated
well enough to test the accounting: the first request with a given cacheable system
prompt writes the cache, later identical ones read it. (The real APIs only cache
prefixes above a minimum length; here every prefix counts, so short skills work.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.loopback_models import (
    DEFAULT_THOUGHT,
    OpenAIModel,
    openai_model,
    openai_problem,
    split_think,
    thinking_problem,
)
from tests.loopback_tools import Step, ToolUse, history, tool_problem

if TYPE_CHECKING:
    from tests.loopback_batches import Outcome, SubmittedBatch

__all__ = ["Call", "LoopbackServer", "Responder", "echo"]

#: The Anthropic API version from which sampling parameters are rejected (SDK 2.x sends it).
_NO_SAMPLING_SINCE = "2026-10-21"
_SAMPLING_PARAMS = ("temperature", "top_p", "top_k")

_ROUTES = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai"}

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {429: "requests"}
_OPENAI_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
_DEFAULT_MESSAGES = {
    400: "Invalid request",
    401: "Invalid API key",
    404: "Not found",
    429: "Rate limit exceeded; please retry later",
    500: "Internal server error",
    503: "Service unavailable",
    529: "Overloaded",
}


@dataclass(frozen=True)
class Call:
    """One request as the server received it, flattened across the two APIs."""

    api: str  # "anthropic" | "openai"
    model: str
    system: str | None
    prompt: str
    body: dict[str, Any]
    headers: dict[str, str]  # names lower-cased
    #: The conversation after the first user message (tool calls and results).
    history: tuple[Step, ...] = ()
    #: The names of the tools offered.
    tools: tuple[str, ...] = ()


#: The answer text, or tool calls (see :class:`tests.loopback_tools.ToolUse`).
Responder = Callable[[Call], "str | ToolUse"]


def echo(call: Call) -> str:
    """The default responder: echo the prompt, and the skill's first line when there is one."""
    text = f"echo: {call.prompt}"
    if call.system:
        first = next((line.strip() for line in call.system.splitlines() if line.strip()), "")
        text += f" | skill: {first}"
    return text


@dataclass(frozen=True)
class _Failure:
    status: int
    message: str
    retry_after: float | None


@dataclass(frozen=True)
class _Reply:
    status: int
    payload: dict[str, Any]
    headers: Mapping[str, str]
    #: A body sent as is instead of the payload's JSON (a file's content, JSONL results).
    raw: bytes | None = None
    content_type: str = "application/json"


def _default_message(status: int) -> str:
    if status in _DEFAULT_MESSAGES:
        return _DEFAULT_MESSAGES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _api_for_error(path: str) -> str:
    """Which provider's error format to use for a path that is not a known route."""
    openai = ("/v1/chat", "/v1/files", "/v1/batches")
    return "openai" if path.startswith(openai) else "anthropic"


def _tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: one token per word."""
    return len(text.split())


def _text_of(content: Any) -> str:
    """Flatten a message content (a string or a list of text blocks/parts) to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def _parse_call(api: str, body: dict[str, Any], headers: dict[str, str]) -> Call:
    messages = body.get("messages")
    if api == "anthropic":
        system = body.get("system")
        system_text = None if system is None else _text_of(system)
    else:
        parts = [
            _text_of(m.get("content"))
            for m in (messages if isinstance(messages, list) else [])
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        ]
        system_text = "\n".join(parts) if parts else None
    return Call(
        api=api,
        model=str(body.get("model", "")),
        system=system_text,
        prompt=_first_user_text(messages),
        body=body,
        headers=headers,
        history=history(api, body),
        tools=_tool_names(api, body.get("tools")),
    )


def _first_user_text(messages: Any) -> str:
    """The question: the first user message when the later ones carry tool results."""
    text = _last_user_text(messages)
    if text.strip() or not isinstance(messages, list):
        return text
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return _text_of(users[0].get("content")) if users else ""


def _tool_names(api: str, tools: Any) -> tuple[str, ...]:
    if not isinstance(tools, list):
        return ()
    if api == "openai":
        tools = [t.get("function") for t in tools if isinstance(t, dict)]
    return tuple(str(t.get("name")) for t in tools if isinstance(t, dict))


def _error(
    api: str,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    param: str | None = None,
    code: str | None = None,
) -> _Reply:
    """An error body in the provider's own format, which is what the SDKs parse."""
    if api == "anthropic":
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        payload: dict[str, Any] = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_loopback",
        }
    else:
        kind = _OPENAI_ERROR_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        payload = {
            "error": {
                "message": message,
                "type": kind,
                "param": param,
                "code": code or _OPENAI_ERROR_CODES.get(status),
            }
        }
    return _Reply(status, payload, headers or {})


def _anthropic_problem(call: Call, budget_thinking_models: frozenset[str]) -> str | None:
    """What the real Messages API would reject in this request, if anything."""
    body, headers = call.body, call.headers
    version = headers.get("anthropic-version")
    if not version:
        return "anthropic-version: header is required"
    if not (headers.get("x-api-key") or headers.get("authorization")):
        return "authentication: x-api-key or Authorization header is required"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 0:
        return "max_tokens: must be a non-negative integer"
    if version >= _NO_SAMPLING_SINCE:
        for name in _SAMPLING_PARAMS:
            if name in body:
                return f"{name}: Extra inputs are not permitted"
    return thinking_problem(call.model, call.body, call.model in budget_thinking_models)


def _truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    words = text.split()
    if max_tokens is None or len(words) <= max_tokens:
        return text, False
    return " ".join(words[:max_tokens]), True


class LoopbackServer:
    """A threaded server on 127.0.0.1 with a free port; it starts on construction.

    ``responder`` maps a :class:`Call` to the answer text (default :func:`echo`).
    ``latency`` seconds are slept per request, in the request's own thread, so a slow
    provider is simulated without serializing concurrent requests.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        latency: float = 0.0,
        *,
        reasoning_models: Iterable[str] = (),
        reasoning_format: str = "inline",
        budget_thinking_models: Iterable[str] = (),
    ) -> None:
        """``reasoning_models``: OpenAI deployment names that run a reasoning model.
        ``budget_thinking_models``: Anthropic model names (a gateway's, say) that think
        only on a budget, as the 4.5 models do.
        ``reasoning_format``: how a compatible server returns a local model's ``<think>``
        text: ``inline`` (llama-server's ``--reasoning-format none``) or ``deepseek``
        (split into ``reasoning_content``)."""
        self.responder: Responder = responder or echo
        self.latency = latency
        self.reasoning_models = frozenset(reasoning_models)
        self.budget_thinking_models = frozenset(budget_thinking_models)
        self.reasoning_format = reasoning_format
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._failures: deque[_Failure] = deque()
        self._cached_prefixes: set[tuple[str, str, str]] = set()
        self._ids = itertools.count(1)
        # Imported here: the batch endpoints build on this module's replies.
        from tests.loopback_batches import BatchEndpoints

        #: The batch endpoints' state; tests end batches through the methods below.
        self.batch_api = BatchEndpoints(self)
        self._connections: set[socket.socket] = set()
        self._stopped = False
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long stop() waits for the loop to notice
            name=f"loopback-{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- public API ---------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for the Anthropic SDK (it appends ``/v1/messages``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for the OpenAI SDK (it appends ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def calls(self) -> list[Call]:
        """Every request received so far, failed ones included, in arrival order (a copy)."""
        with self._lock:
            return list(self._calls)

    @property
    def batches(self) -> list[SubmittedBatch]:
        """Every batch submitted so far (either API), in order, with its requests."""
        return self.batch_api.submitted()

    @property
    def batch_submissions(self) -> int:
        return len(self.batch_api.submitted())

    def end_batches(self, outcome: Outcome | None = None, batch_id: str | None = None) -> None:
        """End the unended batches (or ``batch_id``): each request's fate is
        ``outcome(custom_id, index)`` ("succeeded", "errored", "expired", "canceled"),
        by default succeeded (canceled in a batch being canceled). Succeeded requests are
        answered as live ones are."""
        self.batch_api.end(outcome, batch_id)

    def end_batches_after(self, polls: int | None, outcome: Outcome | None = None) -> None:
        """End each batch by itself on its ``polls``-th status request (None: never)."""
        self.batch_api.end_after(polls, outcome)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` in the provider's error format.

        ``retry_after`` sets the ``retry-after`` header; ``message`` defaults to a
        typical text for the status.
        """
        text = message or _default_message(status)
        with self._lock:
            self._failures.extend(_Failure(status, text, retry_after) for _ in range(times))

    def stop(self) -> None:
        """Stop serving and close every open connection; later requests are refused."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:  # after close, so no connection can be accepted behind our back
            connections = list(self._connections)
        # Keep-alive connections outlive the listening socket; without this, an SDK's
        # pooled connection would still reach a handler thread after stop().
        for connection in connections:
            with contextlib.suppress(OSError):  # the client may have hung up already
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (called from handler threads) ------------------------------

    def _track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _handle(
        self, path: str, raw: bytes, headers: dict[str, str], method: str = "POST"
    ) -> _Reply:
        route = path.split("?", 1)[0]
        api = _ROUTES.get(route) if method == "POST" else None
        if api is None:
            batch_reply = self.batch_api.handle(method, route, raw, headers)
            if batch_reply is not None:
                return batch_reply
            return _error(_api_for_error(path), 404, f"Not found: {path}")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return _error(api, 400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(api, 400, "The request body must be a JSON object.")

        call = _parse_call(api, body, headers)
        with self._lock:
            self._calls.append(call)
        failed = self._failure_reply(api)
        return failed if failed is not None else self._answer(call)

    def _failure_reply(self, api: str) -> _Reply | None:
        """The next queued failure (see :meth:`fail_next`) as a reply, after the latency."""
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if self.latency:
            time.sleep(self.latency)
        if failure is None:
            return None
        extra = {}
        if failure.retry_after is not None:
            extra["retry-after"] = f"{failure.retry_after:g}"
        return _error(api, failure.status, failure.message, extra)

    def _answer(self, call: Call) -> _Reply:
        """The reply to a request, live or in a batch: what the API would refuse, else the
        responder's answer in the provider's format."""
        api = call.api
        if api == "anthropic":
            problem = _anthropic_problem(call, self.budget_thinking_models)
            if problem is not None:
                return _error(api, 400, problem)
        else:
            model = openai_model(call.model, self.reasoning_models)
            refused = openai_problem(call.body, model)
            if refused is not None:
                return _error(api, 400, refused.message, param=refused.param, code=refused.code)
        refusal = tool_problem(api, call.body)
        if refusal is not None:
            return _error(api, 400, refusal)
        try:
            text = self.responder(call)
        except Exception as error:  # a broken test responder should read as a 500, not a hang
            return _error(api, 500, f"responder failed: {error!r}")
        if isinstance(text, ToolUse):
            return self._tool_reply(call, text)
        if api == "anthropic":
            return self._anthropic_reply(call, text)
        return self._openai_reply(call, text, model)

    def _tool_reply(self, call: Call, use: ToolUse) -> _Reply:
        """A turn that calls tools, as each provider documents it."""
        number = next(self._ids)
        ids = [f"call_{number:06d}_{i}" for i in range(len(use.calls))]
        input_tokens = _tokens(call.prompt) + _tokens(call.system or "")
        output_tokens = _tokens(use.text) + 5 * len(use.calls)
        if call.api == "anthropic":
            content: list[dict[str, Any]] = [{"type": "text", "text": use.text}] if use.text else []
            content += [
                {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args}
                for i, (name, args) in zip(ids, use.calls, strict=True)
            ]
            payload: dict[str, Any] = {
                "id": f"msg_loopback_{number:06d}",
                "type": "message",
                "role": "assistant",
                "model": call.model,
                "content": content,
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }
            return _Reply(200, payload, {"request-id": f"req_loopback_{number:06d}"})
        calls = [
            {
                "id": i,
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for i, (name, args) in zip(ids, use.calls, strict=True)
        ]
        message = {
            "role": "assistant",
            "content": use.text or None,
            "refusal": None,
            "tool_calls": calls,
        }
        payload = {
            "id": f"chatcmpl-loopback{number:06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
        return _Reply(200, payload, {"x-request-id": f"req_loopback{number:06d}"})

    def _first_time(self, api: str, model: str, prefix: str) -> bool:
        """Record a cacheable prompt prefix; True if it was not cached yet (a cache write)."""
        key = (api, model, prefix)
        with self._lock:
            new = key not in self._cached_prefixes
            self._cached_prefixes.add(key)
        return new

    def _anthropic_reply(self, call: Call, text: str) -> _Reply:
        thought, text = split_think(text)
        kind = (call.body.get("thinking") or {}).get("type")
        thinks = kind in ("enabled", "adaptive")
        thought = (thought or DEFAULT_THOUGHT) if thinks else None
        budget = call.body["max_tokens"]
        thought, thought_cut = _truncate(thought, budget) if thought else (None, False)
        thinking_tokens = _tokens(thought or "")
        text, truncated = _truncate(text, budget - thinking_tokens)
        truncated = truncated or thought_cut
        system = call.body.get("system")
        cacheable = isinstance(system, list) and any(
            isinstance(block, dict) and "cache_control" in block for block in system
        )
        input_tokens = _tokens(call.prompt)
        cache_write = cache_read = 0
        if call.system is not None and cacheable:
            if self._first_time(call.api, call.model, call.system):
                cache_write = _tokens(call.system)
            else:
                cache_read = _tokens(call.system)
        elif call.system is not None:
            input_tokens += _tokens(call.system)
        number = next(self._ids)
        content: list[dict[str, Any]] = []
        if thought is not None:
            signature = f"sig-loopback-{number:06d}"
            content.append({"type": "thinking", "thinking": thought, "signature": signature})
        if text or thought is None:
            content.append({"type": "text", "text": text})
        usage: dict[str, Any] = {
            "input_tokens": input_tokens,
            "output_tokens": _tokens(text) + thinking_tokens,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
        }
        if thinks:
            usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
        payload = {
            "id": f"msg_loopback_{number:06d}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": "max_tokens" if truncated else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        return _Reply(200, payload, {"request-id": f"req_loopback_{number:06d}"})

    def _openai_reply(self, call: Call, text: str, model: OpenAIModel) -> _Reply:
        body = call.body
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        message: dict[str, Any] = {"role": "assistant", "refusal": None}
        reasoning_tokens = 0
        if model.reasons:
            # OpenAI reasons out of sight: only the count comes back, and it is spent
            # from the same limit as the answer.
            thought, text = split_think(text)
            if (body.get("reasoning_effort") or model.default_effort) != "none":
                reasoning_tokens = _tokens(thought or DEFAULT_THOUGHT)
                if limit is not None:
                    reasoning_tokens = min(reasoning_tokens, limit)
            text, truncated = _truncate(text, None if limit is None else limit - reasoning_tokens)
            completion_tokens = _tokens(text) + reasoning_tokens
        else:
            text, truncated = _truncate(text, limit)
            completion_tokens = _tokens(text)
            thought = None
            if self.reasoning_format == "deepseek":
                thought, text = split_think(text)
            if thought is not None:
                message["reasoning_content"] = thought
        message["content"] = text
        system_tokens = _tokens(call.system or "")
        # OpenAI caches prompt prefixes automatically and counts cached and newly
        # written tokens inside prompt_tokens, itemizing them in prompt_tokens_details.
        cached = written = 0
        if call.system is not None:
            if self._first_time(call.api, call.model, call.system):
                written = system_tokens
            else:
                cached = system_tokens
        prompt_tokens = system_tokens + _tokens(call.prompt)
        number = next(self._ids)
        payload = {
            "id": f"chatcmpl-loopback{number:06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "length" if truncated else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
                "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
            },
        }
        return _Reply(200, payload, {"x-request-id": f"req_loopback{number:06d}"})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in `latency` must not block interpreter exit

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, stop()) are expected here; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.owner._track(self.connection, open_=False)
        super().finish()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send(self.server.owner._handle(self.path, raw, headers))

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send(self.server.owner._handle(self.path, b"", headers, method="GET"))

    def _send(self, reply: _Reply) -> None:
        data = reply.raw if reply.raw is not None else json.dumps(reply.payload).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; failures show up in the assertions
