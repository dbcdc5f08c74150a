"""Model specs: ``[provider:]name[@base_url]`` and the alias table.

Parsed once at configure time; nothing here imports pytest or an SDK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

#: Built-in aliases; ini ``skill_model_aliases`` extends or overrides them.
DEFAULT_ALIASES: Mapping[str, str] = {
    "haiku": "anthropic:claude-haiku-4-5",
    "sonnet": "anthropic:claude-sonnet-4-6",
    "opus": "anthropic:claude-opus-4-6",
    "gpt-4.1": "openai:gpt-4.1",
    "gpt-4.1-mini": "openai:gpt-4.1-mini",
    "gpt-4o-mini": "openai:gpt-4o-mini",
    # Local models: a bare file name is looked up in ``skill_gguf_dirs`` at run time.
    "gemma3-270m": "gguf:gemma-3-270m-q4_k_m.gguf",
    "glm-4.7-flash": "gguf:GLM-4.7-Flash-Q4_0.gguf",
}

_PROVIDER_RE = re.compile(r"^([a-z][a-z0-9_-]*):(?!//)(.+)$")


class SpecError(ValueError):
    """A model spec that cannot be parsed or resolved; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """A model as the user named it, resolved to a provider and a model id."""

    name: str
    provider: str
    model: str
    base_url: str | None = None

    @cached_property  # one string per model, not one per item that names it
    def resolved(self) -> str:
        text = f"{self.provider}:{self.model}"
        return f"{text}@{self.base_url}" if self.base_url else text


def parse_aliases(lines: str | list[str]) -> dict[str, str]:
    """Parse ini ``alias = spec`` lines; blank lines and ``#`` comments are ignored."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    aliases: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        alias, sep, target = line.partition("=")
        if not sep or not alias.strip() or not target.strip():
            raise SpecError(
                f"skill_model_aliases: cannot read {raw.strip()!r}; "
                "write one 'alias = spec' per line"
            )
        aliases[alias.strip()] = target.strip()
    return aliases


def parse_model_spec(text: str, aliases: Mapping[str, str] | None = None) -> ModelSpec:
    """Parse ``[provider:]name[@base_url]``, following aliases; keep the typed name."""
    table = dict(DEFAULT_ALIASES if aliases is None else aliases)
    typed = text.strip()
    if not typed:
        raise SpecError("empty model spec; name a model such as 'haiku' or 'openai:gpt-4.1-mini'")
    current, seen = typed, []
    while current in table:
        if current in seen:
            raise SpecError(f"model alias loop: {' -> '.join([*seen, current])}")
        seen.append(current)
        current = table[current]
    match = _PROVIDER_RE.match(current)
    if not match:
        known = ", ".join(sorted(table))
        raise SpecError(
            f"unknown model {typed!r}: use provider:name (anthropic:, openai:, gguf:) "
            f"or one of the aliases: {known}"
        )
    provider, rest = match.groups()
    base_url: str | None = None
    if provider != "gguf" and "@" in rest:
        rest, _, base_url = rest.partition("@")
        if not re.match(r"^https?://", base_url):
            raise SpecError(
                f"model spec {typed!r}: base URL {base_url!r} must start with http:// or https://"
            )
    if not rest:
        raise SpecError(f"model spec {typed!r} names no model after '{provider}:'")
    return ModelSpec(name=typed, provider=provider, model=rest, base_url=base_url)
