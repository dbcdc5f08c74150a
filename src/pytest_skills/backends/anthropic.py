"""Anthropic Messages API backend, through the official ``anthropic`` SDK.

The SDK is imported when a backend is built, never at module import, so that replaying
a cache needs neither the SDK nor a key. Retries are the runner's job: the SDK's own
are switched off, and every failure becomes a :class:`BackendError` that says whether
retrying can help.

Sampling: SDK 2.x speaks API version 2026-10-21, which removed ``temperature``,
``top_p`` and ``top_k`` (the API answers 400 even for the default value, and the SDK
no longer accepts the arguments), and the API has never had a seed. So only
``max_tokens`` is sent; temperature and seed still distinguish cache entries.

Thinking: with a reasoning setting, models from Claude 4.6 on think ``adaptive``ly at
the requested ``output_config.effort``; the 4.5 models (and older) take ``enabled``
thinking with ``budget_tokens``. Either way the reasoning budget is added to
``max_tokens``, which bounds the answer, since thinking counts against it. Thinking
blocks are kept apart from the answer, as :attr:`Response.reasoning`. The form is
chosen from the model id; when the server refuses it with a 400 that names thinking (a
gateway's model name says nothing of the model behind it), the other form is sent
instead for the rest of the run, and every answer says so (``extra["adapted"]``).

Batches: ``backend.batches`` is the Message Batches API (:mod:`.anthropic_batches`),
sending what :func:`request_params` builds and reading answers with :meth:`response`,
as live calls do; None for a gateway named with ``@base_url``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

from pytest_skills.backends.anthropic_batches import AnthropicBatches
from pytest_skills.backends.base import (
    BackendError,
    BackendOptions,
    MalformedBodyError,
    MissingCredentialsError,
    body_excerpt,
    field_text,
    optional_text,
    recorded_now,
    sdk_error,
    sendable,
    shape,
    token_count,
)
from pytest_skills.backends.batches import SdkSession
from pytest_skills.backends.tools import anthropic_messages, anthropic_tool_calls, anthropic_tools
from pytest_skills.backends.transport import http_client
from pytest_skills.models import ModelSpec, Reasoning, Request, Response, Usage

PROVIDER = "Anthropic"
#: Models that think only with a budget (``thinking.type: enabled``), not adaptively.
_BUDGET_ONLY = re.compile(r"^claude-(3|(haiku|sonnet|opus)-4(-[015])?(-\d{8})?$)")
#: Our levels as ``output_config.effort``; ``minimal`` has no Anthropic counterpart.
EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "max",
}
_MIN_BUDGET = 1024
#: Either variable is a credential the SDK reads by itself.
CREDENTIAL_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


class AnthropicBackend:
    exclusive = False

    def __init__(self, spec: ModelSpec, options: BackendOptions) -> None:
        # Checked here rather than left to the SDK so the runner can fail the items
        # with a message that names the variable to set.
        if not any(os.environ.get(name) for name in CREDENTIAL_VARIABLES):
            raise MissingCredentialsError("ANTHROPIC_API_KEY", PROVIDER)
        # The SDK is imported only when a backend is built: replays never need it.
        import anthropic

        self._sdk = anthropic
        self.spec = spec
        self._timeout = options.timeout
        # base_url None lets the SDK fall back to ANTHROPIC_BASE_URL, then the public API.
        # Our HTTP client: a deadline on the whole call and a cap on the body it reads.
        self._client = anthropic.Anthropic(
            base_url=spec.base_url or None,
            timeout=options.timeout,
            max_retries=0,
            http_client=http_client(anthropic, options.timeout),
        )
        # The thinking form the server asked for with a 400, once learned: shared by calls.
        self._adaptive: bool | None = None
        self._adapt_lock = threading.Lock()
        # The Message Batches API; a gateway named with @base_url may not have one.
        self.batches: AnthropicBatches | None = None
        if not spec.base_url:
            session = SdkSession(
                PROVIDER,
                anthropic,
                self._client,
                options.timeout,
                self._backend_error,
                anthropic.AnthropicError,
            )
            self.batches = AnthropicBatches(session, self.batch_params, self._batch_answer)

    def complete(self, request: Request) -> Response:
        anthropic = self._sdk
        started = time.perf_counter()
        while True:
            learned = self._adaptive
            adaptive = adaptive_thinking(request.model) if learned is None else learned
            params = request_params(request, adaptive=adaptive)
            try:
                message = self._client.messages.create(**params)
                break
            except anthropic.BadRequestError as error:
                if not self._adapt(error, request.sampling.reasoning, adaptive):
                    raise self._backend_error(error) from None
            except anthropic.AnthropicError as error:
                raise self._backend_error(error) from None
        latency = time.perf_counter() - started
        extra = {"adapted": _adapted_note(learned)} if learned is not None else {}
        return self.response(message, request.model, latency=latency, extra=extra)

    def batch_params(self, request: Request) -> dict[str, Any]:
        """What :meth:`complete` would send now, for a batch: the thinking form learned
        from a 400 this run, else the one the model id says (a batch cannot adapt)."""
        learned = self._adaptive
        adaptive = adaptive_thinking(request.model) if learned is None else learned
        return request_params(request, adaptive=adaptive)

    def _batch_answer(self, message: Any, where: str, batch_id: str) -> Response:
        return self.response(message, where, latency=0.0, extra={"batch": batch_id})

    def response(
        self, message: Any, model: str, *, latency: float, extra: dict[str, Any]
    ) -> Response:
        """A Messages API answer as a :class:`Response`: live answers and batch results
        go through here alike, so that both read the same."""
        try:
            text, thoughts, usage = _read_message(message, self._sdk.types.Message)
        except MalformedBodyError as error:
            raise BackendError(
                f"{PROVIDER}: the response for {model} is not a Messages API answer: {error}"
            ) from None
        return Response(
            text=text,
            usage=usage,
            reasoning=thoughts,
            latency_s=latency,
            stop_reason=optional_text(message, "stop_reason"),
            reported_model=optional_text(message, "model"),
            recorded_at=recorded_now(),
            extra=extra,
            tool_calls=anthropic_tool_calls(message.content),
        )

    def _adapt(self, error: Any, reasoning: Reasoning | None, sent_adaptive: bool) -> bool:
        """Learn the other thinking form from a 400 that refuses the one sent; False when
        the 400 is about something else, or both forms have been refused."""
        if reasoning is None or not reasoning.enabled:
            return False
        if "thinking" not in _status_detail(error).lower():
            return False
        with self._adapt_lock:
            if self._adaptive is None:
                self._adaptive = not sent_adaptive
                return True
            # Another call learned it meanwhile (retry in that form), or this was
            # already the learned form and it is refused too (give up).
            return self._adaptive != sent_adaptive

    def close(self) -> None:
        """Close the SDK's connection pool (optional: the runner may leave it to GC)."""
        self._client.close()

    def _backend_error(self, error: Exception) -> BackendError:
        """Translate an SDK exception into one line the runner can show and act on."""
        return sdk_error(PROVIDER, self._sdk, error, self._timeout, _status_detail)


def request_params(request: Request, *, adaptive: bool) -> dict[str, Any]:
    """The Messages API parameters of ``request``, with thinking in the given form."""
    params: dict[str, Any] = {
        "model": request.model,
        "messages": anthropic_messages(request),
    }
    if request.tools:
        params["tools"] = anthropic_tools(request)
    if request.system is not None:
        # One cacheable block: the skill comes first and is identical across cases,
        # so every call after the first reads it from the prompt cache.
        params["system"] = [
            {
                "type": "text",
                "text": sendable(request.system),
                "cache_control": {"type": "ephemeral"},
            }
        ]
    reasoning = request.sampling.reasoning
    params.update(
        thinking_params(request.model, reasoning, request.sampling.max_tokens, adaptive=adaptive)
    )
    return params


def adaptive_thinking(model: str) -> bool:
    """Whether the model thinks adaptively (Claude 4.6 and later) rather than on a budget."""
    return _BUDGET_ONLY.match(model) is None


def thinking_params(
    model: str, reasoning: Reasoning | None, max_tokens: int, *, adaptive: bool | None = None
) -> dict[str, Any]:
    """``max_tokens`` and, with a reasoning setting, ``thinking`` and ``output_config``;
    ``adaptive`` overrides what the model id says (see :func:`adaptive_thinking`)."""
    if reasoning is None:
        return {"max_tokens": max_tokens}
    if not reasoning.enabled:
        return {"max_tokens": max_tokens, "thinking": {"type": "disabled"}}
    budget = max(reasoning.tokens, _MIN_BUDGET)
    params: dict[str, Any] = {"max_tokens": max_tokens + budget}
    if adaptive_thinking(model) if adaptive is None else adaptive:
        params["thinking"] = {"type": "adaptive"}
        params["output_config"] = {"effort": EFFORTS[reasoning.effort]}
    else:
        params["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return params


def describe_thinking(model: str, reasoning: Reasoning | None) -> str | None:
    """A few words for the run's header on what thinking is asked for."""
    if reasoning is None:
        return None
    if not reasoning.enabled:
        return "thinking disabled"
    budget = max(reasoning.tokens, _MIN_BUDGET)
    if adaptive_thinking(model):
        effort = EFFORTS[reasoning.effort]
        return f"adaptive thinking, effort {effort}, max_tokens + {budget}"
    return f"thinking with budget_tokens {budget} (max_tokens + {budget})"


def _read_message(message: Any, kind: type) -> tuple[str, str | None, Usage]:
    """Answer, thinking and usage of a Messages API response; MalformedBodyError names the
    first thing of the wrong shape (the SDK builds its objects without checking)."""
    if not isinstance(message, kind):
        raise MalformedBodyError(f"the body is {shape(message)}, not a message object")
    content = getattr(message, "content", None)
    if not isinstance(content, list):
        raise MalformedBodyError(f"'content' is {shape(content)}, not a list of blocks")
    texts: list[str] = []
    thoughts: list[str] = []
    for index, block in enumerate(content):
        kind_of = getattr(block, "type", None)
        if kind_of == "text":
            texts.append(field_text(block, "text", f"content[{index}]"))
        elif kind_of == "thinking":
            thoughts.append(field_text(block, "thinking", f"content[{index}]"))
        elif kind_of == "redacted_thinking":
            thoughts.append("[redacted thinking]")
    usage = getattr(message, "usage", None)
    if usage is None or isinstance(usage, (str, int, float, list, dict)):
        raise MalformedBodyError(f"'usage' is {shape(usage)}, not an object")
    details = getattr(usage, "output_tokens_details", None)
    return (
        "".join(texts),
        "\n\n".join(thoughts) or None,
        Usage(
            input_tokens=token_count(usage, "input_tokens", "usage"),
            output_tokens=token_count(usage, "output_tokens", "usage"),
            cache_read_tokens=token_count(usage, "cache_read_input_tokens", "usage", 0),
            cache_write_tokens=token_count(usage, "cache_creation_input_tokens", "usage", 0),
            reasoning_tokens=(
                token_count(details, "thinking_tokens", "usage.output_tokens_details", 0)
                if details is not None
                else 0
            ),
        ),
    )


def _adapted_note(adaptive: bool) -> str:
    if adaptive:
        return "the server refused thinking with budget_tokens: sent adaptive thinking instead"
    return "the server refused adaptive thinking: sent thinking with budget_tokens instead"


def _status_detail(error: Any) -> str:
    return error.api_message or body_excerpt(error.body) or error.response.reason_phrase
