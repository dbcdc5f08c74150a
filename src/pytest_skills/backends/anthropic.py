"""Anthropic Messages API backend, through the official ``anthropic`` SDK.

The SDK is imported when a backend is built, never at module import, so that replaying
a cache needs neither the SDK nor a key. Retries are the runner's job: the SDK's own
are switched off, and every failure becomes a :class:`BackendError` that says whether
retrying can help.

Sampling: SDK 2.x speaks API version 2026-10-21, which removed ``temperature``,
``top_p`` and ``top_k`` (the API answers 400 even for the default value, and the SDK
no longer accepts the arguments), and the API has never had a seed. So only
``max_tokens`` is sent; temperature and seed still distinguish cache entries.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pytest_skills.backends import BackendError, MissingCredentials
from pytest_skills.models import ModelSpec, Request, Response, Usage

if TYPE_CHECKING:
    from pytest_skills.settings import Settings

PROVIDER = "Anthropic"
#: Either variable is a credential the SDK reads by itself.
CREDENTIAL_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


class AnthropicBackend:
    exclusive = False

    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        # Checked here rather than left to the SDK so the runner can fail the items
        # with a message that names the variable to set.
        if not any(os.environ.get(name) for name in CREDENTIAL_VARIABLES):
            raise MissingCredentials("ANTHROPIC_API_KEY", PROVIDER)
        import anthropic

        self.spec = spec
        self._timeout = settings.timeout
        # base_url None lets the SDK fall back to ANTHROPIC_BASE_URL, then the public API.
        self._client = anthropic.Anthropic(
            base_url=spec.base_url or None, timeout=settings.timeout, max_retries=0
        )

    def complete(self, request: Request) -> Response:
        import anthropic

        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.sampling.max_tokens,
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if request.system is not None:
            # One cacheable block: the skill comes first and is identical across cases,
            # so every call after the first reads it from the prompt cache.
            params["system"] = [
                {"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}
            ]
        started = time.perf_counter()
        try:
            message = self._client.messages.create(**params)
        except anthropic.AnthropicError as error:
            raise self._backend_error(error) from None
        latency = time.perf_counter() - started

        usage = message.usage
        return Response(
            text="".join(block.text for block in message.content if block.type == "text"),
            usage=Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_input_tokens or 0,
                cache_write_tokens=usage.cache_creation_input_tokens or 0,
            ),
            latency_s=latency,
            stop_reason=message.stop_reason,
            reported_model=message.model,
            recorded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def close(self) -> None:
        """Close the SDK's connection pool (optional: the runner may leave it to GC)."""
        self._client.close()

    def _backend_error(self, error: Exception) -> BackendError:
        """Translate an SDK exception into one line the runner can show and act on."""
        import anthropic

        if isinstance(error, anthropic.APIStatusError):
            status = error.status_code
            headers = error.response.headers
            detail = error.api_message or body_excerpt(error.body) or error.response.reason_phrase
            return BackendError(
                f"{PROVIDER} {status}: {detail}",
                retryable=is_retryable(status, headers),
                retry_after=retry_after(headers),
            )
        if isinstance(error, anthropic.APITimeoutError):  # before its base class
            return BackendError(
                f"{PROVIDER}: no answer within {self._timeout:g}s from {error.request.url}",
                retryable=True,
            )
        if isinstance(error, anthropic.APIConnectionError):
            cause = error.__cause__ or error.message
            return BackendError(
                f"{PROVIDER}: cannot reach {error.request.url}: {cause}", retryable=True
            )
        return BackendError(f"{PROVIDER}: {error}")


def is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    """Rate limits, overload (529), server errors and request timeouts are worth a retry."""
    # Both providers may say so explicitly; the SDKs obey this header, and so do we.
    verdict = headers.get("x-should-retry")
    if verdict in ("true", "false"):
        return verdict == "true"
    return status in (408, 429) or status >= 500


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait as the server asks: ``retry-after-ms``, or ``retry-after`` as
    (possibly fractional) seconds or an HTTP date. ``None`` when it does not say."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) * scale, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - time.time(), 0.0)
    return None


def body_excerpt(body: object) -> str | None:
    """A short excerpt of an error body that has no provider message (a proxy's page)."""
    if body is None:
        return None
    if isinstance(body, bytes):
        text = body.decode(errors="replace")
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, default=str)
    text = " ".join(text.split())
    return text[:200] or None
