"""Backends turn a :class:`~pytest_skills.models.Request` into a :class:`Response`.

Each backend lives in its own module and imports its SDK lazily, so that replaying a
cache needs neither the SDK's key nor (for local models) llama-cpp-python.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pytest_skills.models import ModelSpec, Request, Response


class BackendError(Exception):
    """A call that failed. ``retryable`` errors (429, 529, 5xx, timeouts) are retried."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class MissingCredentials(BackendError):
    """No API key: the message names the environment variable to set."""

    def __init__(self, variable: str, provider: str):
        super().__init__(
            f"{provider} needs an API key: set the environment variable {variable} "
            f"(or replay recorded answers with --skill-cache=replay)"
        )
        self.variable = variable


@runtime_checkable
class Backend(Protocol):
    """What the runner needs of a backend.

    ``complete`` is called from worker threads; ``exclusive`` backends (a local model
    in this process) get one call at a time, in the order the runner planned.
    """

    exclusive: bool

    def complete(self, request: Request) -> Response: ...


def make_builtin_backend(spec: ModelSpec, settings: object) -> Backend | None:
    """Build a backend for the built-in providers; ``None`` for an unknown provider."""
    if spec.provider == "anthropic":
        from pytest_skills.backends.anthropic import AnthropicBackend

        return AnthropicBackend(spec, settings)
    if spec.provider == "openai":
        from pytest_skills.backends.openai import OpenAIBackend

        return OpenAIBackend(spec, settings)
    if spec.provider == "gguf":
        from pytest_skills.backends.llama_cpp import LlamaCppBackend

        return LlamaCppBackend.shared(spec, settings)
    return None
