"""The Chat Completions wire format, without an SDK client: the body
:class:`~pytest_skills.backends.openai.OpenAIBackend` sends for a request, and how a
completion is read into a :class:`Response`. Live calls and batches (OpenAI's Batch API,
vLLM's ``run-batch``) share it, so that both send and read the same."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_skills.backends.base import (
    BackendError,
    MalformedBodyError,
    optional_text,
    recorded_now,
    shape,
    split_reasoning,
    token_count,
)
from pytest_skills.backends.openai_rules import Adaptation, parameter_rules
from pytest_skills.backends.tools import openai_messages, openai_tool_calls, openai_tools
from pytest_skills.models import ModelSpec, Request, Response, Usage

if TYPE_CHECKING:
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletionMessage

PROVIDER = "OpenAI"


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
        tool_calls = openai_tool_calls(choice.message)
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
        tool_calls=tool_calls,
    )


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
