"""OpenAI Chat Completions backend, through the official ``openai`` SDK.

It also serves any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio)
named as ``openai:NAME@BASE_URL``. As with the Anthropic backend, the SDK is imported
lazily and its retries are off: the runner retries, guided by :class:`BackendError`.

Reasoning models take different parameters (see :mod:`.openai_rules`): the rules known
up front decide what the first request sends, and when a server still answers 400
``unsupported_parameter``/``unsupported_value`` for one of them, the backend adapts
once for the rest of the run and marks every answer it then gets (``extra["adapted"]``).
The request, and so the cache key, keeps what the user asked for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_skills.backends.base import (
    BackendError,
    BackendOptions,
    MalformedBodyError,
    MissingCredentialsError,
    body_excerpt,
    optional_text,
    recorded_now,
    sdk_error,
    shape,
    split_reasoning,
    token_count,
)
from pytest_skills.backends.openai_rules import (
    Adaptation,
    ParameterRules,
    adaptation_for,
    parameter_rules,
)
from pytest_skills.backends.tools import openai_messages, openai_tool_calls, openai_tools
from pytest_skills.backends.transport import http_client
from pytest_skills.models import ModelSpec, Request, Response, Usage

if TYPE_CHECKING:
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletionMessage

    from pytest_skills.backends.openai_batches import OpenAIBatches


PROVIDER = "OpenAI"
#: Local OpenAI-compatible servers ignore the key, but the SDK refuses to start without one.
PLACEHOLDER_KEY = "not-needed"


class OpenAIBackend:
    exclusive = False

    def __init__(self, spec: ModelSpec, options: BackendOptions) -> None:
        api_key = os.environ.get("OPENAI_API_KEY") or None
        if api_key is None:
            # A base URL (from the spec or OPENAI_BASE_URL) means a server of the
            # user's choosing, typically local and keyless; api.openai.com needs a key.
            if not (spec.base_url or os.environ.get("OPENAI_BASE_URL")):
                raise MissingCredentialsError("OPENAI_API_KEY", PROVIDER)
            api_key = PLACEHOLDER_KEY
        # The SDK is imported only when a backend is built: replays never need it.
        import openai

        self._sdk = openai
        self.spec = spec
        self._timeout = options.timeout
        # What this run learned from the server's 400s; shared by every call.
        self._adaptations: dict[str, Adaptation] = {}
        self._adapt_lock = threading.Lock()
        # Until one call has gone through, calls go one at a time, so a model that
        # refuses a parameter answers 400 once rather than once per concurrent call.
        self._confirmed = False
        self._probe_lock = threading.Lock()
        # base_url None lets the SDK fall back to OPENAI_BASE_URL, then the public API.
        # Our HTTP client: a deadline on the whole call and a cap on the body it reads.
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=spec.base_url or None,
            timeout=options.timeout,
            max_retries=0,
            http_client=http_client(openai, options.timeout),
        )
        # The Batch API is the official API's: a server named with @base_url (vLLM,
        # llama-server, a proxy) may not have one. Imported here: it imports this module.
        from pytest_skills.backends.openai_batches import OpenAIBatches

        self.batches: OpenAIBatches | None = None if spec.base_url else OpenAIBatches(self)

    @property
    def adaptations(self) -> tuple[Adaptation, ...]:
        """What the server refused this run, and what is sent instead."""
        with self._adapt_lock:
            return tuple(self._adaptations.values())

    def rules(self, request: Request) -> ParameterRules:
        """The parameters known up front for this model and server."""
        compatible = bool(self.spec.base_url)
        return parameter_rules(request.model, request.sampling.reasoning, compatible=compatible)

    def complete(self, request: Request) -> Response:
        if self._confirmed:
            return self._complete(request)
        with self._probe_lock:
            if not self._confirmed:
                response = self._complete(request)
                self._confirmed = True
                return response
        return self._complete(request)

    def _complete(self, request: Request) -> Response:
        openai = self._sdk
        started = time.perf_counter()
        while True:
            adapted = self.adaptations
            body = chat_body(self.spec, request, adapted)
            try:
                completion = self._client.chat.completions.create(**body)
                break
            except openai.BadRequestError as error:
                # A refused parameter is learned once, then the call is sent again.
                if not self._adapt(error, body, adapted):
                    raise self._backend_error(error) from None
            except openai.OpenAIError as error:
                raise self._backend_error(error) from None
        latency = time.perf_counter() - started
        extra = {"adapted": "; ".join(a.note for a in adapted)} if adapted else {}
        return completion_response(
            completion,
            request.model,
            kind=openai.types.chat.ChatCompletion,
            latency=latency,
            extra=extra,
        )

    def _adapt(self, error: Any, sent: dict[str, Any], adapted: tuple[Adaptation, ...]) -> bool:
        """Learn from a 400 that refuses one of our parameters; False when it is not that.

        Each parameter's role (token limit, temperature, effort) is adapted at most once,
        so a server that refuses every form ends in its error, not in a loop.
        """
        adaptation = adaptation_for(_error_body(error), sent)
        if adaptation is None or any(a.slot == adaptation.slot for a in adapted):
            return False
        with self._adapt_lock:
            self._adaptations.setdefault(adaptation.slot, adaptation)
        return True

    def close(self) -> None:
        """Close the SDK's connection pool (optional: the runner may leave it to GC)."""
        self._client.close()

    def _backend_error(self, error: Exception) -> BackendError:
        """Translate an SDK exception into one line the runner can show and act on."""
        return sdk_error(PROVIDER, self._sdk, error, self._timeout, _status_detail)


def chat_body(
    spec: ModelSpec, request: Request, adaptations: Sequence[Adaptation] = ()
) -> dict[str, Any]:
    """The Chat Completions body :class:`OpenAIBackend` sends for ``request`` to the
    server ``spec`` names, after ``adaptations`` learned this run. Needs neither the SDK
    nor a key: a batch file for vLLM's ``run-batch`` is made of these."""
    rules = parameter_rules(
        request.model, request.sampling.reasoning, compatible=bool(spec.base_url)
    )
    body: dict[str, Any] = {"model": request.model, "messages": openai_messages(request)}
    body.update(rules.params(request, adaptations))
    if request.tools:
        body["tools"] = openai_tools(request)
    return body


def completion_response(
    completion: Any, model: str, *, kind: type, latency: float, extra: Mapping[str, Any]
) -> Response:
    """A chat completion as a :class:`Response` (``kind``: the SDK's ``ChatCompletion``):
    live answers and batch results go through here alike, so that both read the same.
    ``extra`` is added to what the answer itself says (a refusal)."""
    try:
        choice = _first_choice(completion, kind)
        text, reasoning = _answer_and_reasoning(choice.message)
        usage = _usage(getattr(completion, "usage", None))
    except MalformedBodyError as error:
        raise BackendError(
            f"{PROVIDER}: the response for {model} is not a chat completion: {error}"
        ) from None
    noted: dict[str, Any] = {}
    refusal = getattr(choice.message, "refusal", None)
    if isinstance(refusal, str) and refusal.strip():
        # A refusal comes instead of the answer (content null): it is what the model
        # said, so checks grade it; the entry keeps it apart as well.
        noted["refusal"] = refusal
        text = text or refusal
    noted.update(extra)
    return Response(
        text=text,
        usage=usage,
        latency_s=latency,
        stop_reason=optional_text(choice, "finish_reason"),
        reported_model=optional_text(completion, "model"),
        recorded_at=recorded_now(),
        extra=noted,
        reasoning=reasoning,
        tool_calls=openai_tool_calls(choice.message),
    )


def _error_body(error: Any) -> dict[str, Any]:
    body = error.body
    return body if isinstance(body, dict) else {}


def _first_choice(completion: Any, kind: type) -> Any:
    """The first choice of a completion; MalformedBodyError names what is of the wrong shape
    (the SDK builds its objects without checking)."""
    if not isinstance(completion, kind):
        raise MalformedBodyError(f"the body is {shape(completion)}, not a completion object")
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list):
        raise MalformedBodyError(f"'choices' is {shape(choices)}, not a list")
    if not choices:
        raise MalformedBodyError("'choices' is empty")
    message = getattr(choices[0], "message", None)
    if message is None or isinstance(message, (str, int, float, list, dict)):
        raise MalformedBodyError(f"'choices[0].message' is {shape(message)}, not an object")
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise MalformedBodyError(f"'choices[0].message.content' is {shape(content)}, not a string")
    return choices[0]


def _answer_and_reasoning(message: ChatCompletionMessage) -> tuple[str, str | None]:
    """The final answer, and the reasoning a compatible server returned beside it or inline.

    llama-server and vLLM put it in ``reasoning_content`` (some servers in ``reasoning``),
    fields the SDK keeps as extras; with their reasoning parser off it stays inline,
    in ``<think>`` tags.
    """
    shown: list[str] = []
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value.strip():
            shown.append(value.strip())
            break
    text, inline = split_reasoning(message.content or "")
    if inline:
        shown.append(inline)
    return text, "\n\n".join(shown) or None


def _status_detail(error: Any) -> str:
    # The SDK has already unwrapped {"error": {...}} into error.body.
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = body_excerpt(body) or error.response.reason_phrase
    return message


def _usage(usage: CompletionUsage | None) -> Usage:
    """Map Chat Completions usage; absent on some compatible servers, hence zeros."""
    if usage is None:
        return Usage()
    if isinstance(usage, (str, int, float, list, dict)):
        raise MalformedBodyError(f"'usage' is {shape(usage)}, not an object")
    details = getattr(usage, "prompt_tokens_details", None)
    output_details = getattr(usage, "completion_tokens_details", None)
    where, out_where = "usage.prompt_tokens_details", "usage.completion_tokens_details"
    reasoning = (
        token_count(output_details, "reasoning_tokens", out_where, 0) if output_details else 0
    )
    cached = token_count(details, "cached_tokens", where, 0) if details is not None else 0
    # cache_write_tokens is recent (openai 3.x); older SDKs do not have the field.
    written = token_count(details, "cache_write_tokens", where, 0) if details is not None else 0
    # prompt_tokens counts every prompt token, cached or not; subtract so that
    # input_tokens means uncached input, as it does for Anthropic.
    return Usage(
        input_tokens=max(token_count(usage, "prompt_tokens", "usage", 0) - cached - written, 0),
        output_tokens=token_count(usage, "completion_tokens", "usage", 0),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )
