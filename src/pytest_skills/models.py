"""Model specs, aliases, and the Request/Response data that flows through the runner.

Nothing here imports pytest or an SDK: specs are parsed at configure time, requests
are planned after collection, and both must be cheap and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

#: Bumped whenever the meaning of a cache key or of a stored entry changes.
CACHE_SCHEMA_VERSION = 1

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

    @property
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


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None

    def merged(self, overrides: Mapping[str, Any]) -> Sampling:
        known = {k: v for k, v in overrides.items() if k in {"temperature", "max_tokens", "seed"}}
        return replace(self, **known) if known else self


@dataclass(frozen=True)
class Request:
    """One model call. Its fields are exactly what the cache key is made of."""

    provider: str
    model: str
    prompt: str
    system: str | None = None
    base_url: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    trial: int = 0
    #: For local models: how the prompt is laid out ("auto": the file's chat template
    #: if it has one, else a plain completion prompt). A property of the model file.
    prompt_format: str | None = None

    def key_fields(self) -> dict[str, Any]:
        fields = {
            "schema": CACHE_SCHEMA_VERSION,
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "system": self.system,
            "prompt": self.prompt,
            "temperature": self.sampling.temperature,
            "max_tokens": self.sampling.max_tokens,
            "seed": self.sampling.seed,
            "trial": self.trial,
        }
        if self.prompt_format is not None:
            fields["prompt_format"] = self.prompt_format
        return fields

    @cached_property
    def key(self) -> str:
        # Frozen, so the digest never goes stale; computed once per request object.
        canonical = json.dumps(self.key_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        # Flat ints: vars() is all it takes, and it is on every item's hot path.
        return dict(vars(self))

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True)
class Response:
    """A model's answer and what it cost; ``cached`` is True when it was replayed."""

    text: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    stop_reason: str | None = None
    reported_model: str | None = None
    recorded_at: str | None = None
    cached: bool = False
    #: Backend-specific facts worth keeping, e.g. a GGUF file's sha256.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["extra"] = dict(self.extra)
        data.pop("cached")
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, cached: bool) -> Response:
        return cls(
            text=data["text"],
            usage=Usage(**data.get("usage", {})),
            latency_s=float(data.get("latency_s", 0.0)),
            stop_reason=data.get("stop_reason"),
            reported_model=data.get("reported_model"),
            recorded_at=data.get("recorded_at"),
            cached=cached,
            extra=dict(data.get("extra", {})),
        )
