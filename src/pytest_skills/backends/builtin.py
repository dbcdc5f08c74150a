"""The built-in providers: ``anthropic:``, ``openai:`` and ``gguf:``."""

from __future__ import annotations

from pytest_skills.backends.anthropic import AnthropicBackend
from pytest_skills.backends.base import Backend, BackendOptions
from pytest_skills.backends.llama_cpp import LlamaCppBackend
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.models import ModelSpec

PROVIDERS = ("anthropic", "openai", "gguf")


def make_builtin_backend(spec: ModelSpec, options: BackendOptions) -> Backend | None:
    """Build a backend for a built-in provider; ``None`` for any other provider."""
    if spec.provider == "anthropic":
        return AnthropicBackend(spec, options)
    if spec.provider == "openai":
        return OpenAIBackend(spec, options)
    if spec.provider == "gguf":
        return LlamaCppBackend.shared(spec, options)
    return None
