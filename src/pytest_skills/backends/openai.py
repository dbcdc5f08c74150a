"""OpenAI Chat Completions backend, through the official ``openai`` SDK.

It also serves any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio)
named as ``openai:NAME@BASE_URL``. As with the Anthropic backend, the SDK is imported
lazily and its retries are off: the runner retries, guided by :class:`BackendError`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from pytest_skills.backends.base import (
    BackendError,
    BackendOptions,
    MissingCredentials,
    body_excerpt,
    recorded_now,
    sdk_error,
)
from pytest_skills.models import ModelSpec, Request, Response, Usage

if TYPE_CHECKING:
    from openai.types import CompletionUsage


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
                raise MissingCredentials("OPENAI_API_KEY", PROVIDER)
            api_key = PLACEHOLDER_KEY
        # The SDK is imported only when a backend is built: replays never need it.
        import openai

        self._sdk = openai
        self.spec = spec
        self._timeout = options.timeout
        # base_url None lets the SDK fall back to OPENAI_BASE_URL, then the public API.
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=spec.base_url or None,
            timeout=options.timeout,
            max_retries=0,
        )

    def complete(self, request: Request) -> Response:
        openai = self._sdk
        messages: list[dict[str, str]] = []
        if request.system is not None:
            # The skill goes first so the provider's automatic prefix cache (and a
            # local server's KV-cache reuse) covers it on every case after the first.
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "temperature": request.sampling.temperature,
            "max_tokens": request.sampling.max_tokens,
        }
        if request.sampling.seed is not None:
            params["seed"] = request.sampling.seed

        started = time.perf_counter()
        try:
            completion = self._client.chat.completions.create(**params)
        except openai.OpenAIError as error:
            raise self._backend_error(error) from None
        latency = time.perf_counter() - started

        if not completion.choices:
            raise BackendError(f"{PROVIDER}: the response for {request.model} has no choices")
        choice = completion.choices[0]
        return Response(
            text=choice.message.content or "",
            usage=_usage(completion.usage),
            latency_s=latency,
            stop_reason=choice.finish_reason,
            reported_model=completion.model,
            recorded_at=recorded_now(),
        )

    def close(self) -> None:
        """Close the SDK's connection pool (optional: the runner may leave it to GC)."""
        self._client.close()

    def _backend_error(self, error: Exception) -> BackendError:
        """Translate an SDK exception into one line the runner can show and act on."""
        return sdk_error(PROVIDER, self._sdk, error, self._timeout, _status_detail)


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
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    # cache_write_tokens is recent (openai 3.x); older SDKs do not have the field.
    written = (getattr(details, "cache_write_tokens", None) or 0) if details is not None else 0
    # prompt_tokens counts every prompt token, cached or not; subtract so that
    # input_tokens means uncached input, as it does for Anthropic.
    return Usage(
        input_tokens=max(usage.prompt_tokens - cached - written, 0),
        output_tokens=usage.completion_tokens,
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )
