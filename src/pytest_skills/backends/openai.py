"""OpenAI Chat Completions backend, through the official ``openai`` SDK.

It also serves any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio)
named as ``openai:NAME@BASE_URL``. As with the Anthropic backend, the SDK is imported
lazily and its retries are off: the runner retries, guided by :class:`BackendError`.

Reasoning models take different parameters (see :mod:`.openai_rules`): the rules known
up front decide what the first request sends, and when a server still answers 400
``unsupported_parameter``/``unsupported_value`` for one of them, the backend adapts
once for the rest of the run and marks every answer it then gets (``extra["adapted"]``).
The request, and so the cache key, keeps what the user asked for.

What is sent and how an answer is read live in :mod:`.openai_wire`, shared with
``backend.batches``, the Batch API (:mod:`.openai_batches`): None for a server named with
``@base_url``, which may have none.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from pytest_skills.backends.base import (
    BackendError,
    BackendOptions,
    MissingCredentialsError,
    body_excerpt,
    sdk_error,
)
from pytest_skills.backends.batches import SdkSession
from pytest_skills.backends.openai_batches import OpenAIBatches
from pytest_skills.backends.openai_rules import (
    Adaptation,
    ParameterRules,
    adaptation_for,
    parameter_rules,
)
from pytest_skills.backends.openai_wire import PROVIDER, chat_body, completion_response
from pytest_skills.backends.transport import http_client
from pytest_skills.models import ModelSpec, Request, Response

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
        # llama-server, a proxy) may not have one.
        self.batches: OpenAIBatches | None = None
        if not spec.base_url:
            session = SdkSession(
                PROVIDER,
                openai,
                self._client,
                options.timeout,
                self._backend_error,
                openai.OpenAIError,
            )
            self.batches = OpenAIBatches(session, self.batch_body)

    @property
    def adaptations(self) -> tuple[Adaptation, ...]:
        """What the server refused this run, and what is sent instead."""
        with self._adapt_lock:
            return tuple(self._adaptations.values())

    def rules(self, request: Request) -> ParameterRules:
        """The parameters known up front for this model and server."""
        compatible = bool(self.spec.base_url)
        return parameter_rules(request.model, request.sampling.reasoning, compatible=compatible)

    def batch_body(self, request: Request) -> dict[str, Any]:
        """What :meth:`complete` would send now, for a batch: with the adaptations learned
        this run (a batch cannot adapt to a 400)."""
        return chat_body(self.spec, request, self.adaptations)

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


def _error_body(error: Any) -> dict[str, Any]:
    body = error.body
    return body if isinstance(body, dict) else {}


def _status_detail(error: Any) -> str:
    # The SDK has already unwrapped {"error": {...}} into error.body.
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = body_excerpt(body) or error.response.reason_phrase
    return message
