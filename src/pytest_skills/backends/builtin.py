"""The built-in providers: ``anthropic:``, ``openai:``, ``gguf:`` and ``hf:``."""

from __future__ import annotations

from pytest_skills.backends.anthropic import AnthropicBackend, describe_thinking
from pytest_skills.backends.base import Backend, BackendOptions
from pytest_skills.backends.llama_cpp import LlamaCppBackend
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.backends.openai_rules import parameter_rules
from pytest_skills.models import ModelSpec, Reasoning

PROVIDERS = ("anthropic", "openai", "gguf", "hf")


def make_builtin_backend(spec: ModelSpec, options: BackendOptions) -> Backend | None:
    """Build a backend for a built-in provider; ``None`` for any other provider."""
    if spec.provider == "anthropic":
        return AnthropicBackend(spec, options)
    if spec.provider == "openai":
        return OpenAIBackend(spec, options)
    if spec.local:
        return LlamaCppBackend.shared(spec, options)
    return None


def describe_parameters(spec: ModelSpec, reasoning: Reasoning | None) -> str | None:
    """What a built-in backend sends for this model beyond the plain request, in a few
    words for the run's header; None when nothing differs."""
    if spec.provider == "openai":
        described = parameter_rules(spec.model, reasoning, compatible=bool(spec.base_url))
        return f"sends {described.describe()}" if described.describe() else None
    if spec.provider == "anthropic":
        thinking = describe_thinking(spec.model, reasoning)
        return f"sends {thinking}" if thinking else None
    if spec.local and reasoning is not None:
        return "reasoning is left to its chat template (llama.cpp has no effort setting)"
    return None
