"""The data of one model call: :class:`Request` in, :class:`Response` out.

Every request is built by :func:`request_for`, for planned items, the ``skill_model``
fixture and the judge alike, so all share the cache's key rules (a local model is
named by its file name, never its path). Pure data: no pytest, no SDK.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_skills.models.specs import ModelSpec

_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})

#: Bumped whenever the meaning of a cache key or of a stored entry changes.
CACHE_SCHEMA_VERSION = 1


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
        # Spelled out: vars() would give every instance a __dict__ it keeps for good.
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }

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
            # Most answers have no extra facts: they share one empty, read-only mapping.
            extra=dict(data["extra"]) if data.get("extra") else _NO_EXTRA,
        )


def cache_model(spec: ModelSpec) -> str:
    """The model as a cache key names it: a local model by its file name, never its path."""
    return Path(spec.model).name if spec.provider == "gguf" else spec.model


def request_for(
    spec: ModelSpec,
    *,
    prompt: str,
    system: str | None = None,
    sampling: Sampling | None = None,
    trial: int = 0,
) -> Request:
    return Request(
        provider=spec.provider,
        model=cache_model(spec),
        base_url=spec.base_url,
        system=system,
        prompt=prompt,
        sampling=sampling or Sampling(),
        trial=trial,
        prompt_format="auto" if spec.provider == "gguf" else None,
    )
