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
from enum import Enum
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_skills.models.specs import ModelSpec

_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})

#: Bumped whenever the meaning of a cache key or of a stored entry changes.
CACHE_SCHEMA_VERSION = 1

#: Reasoning effort levels, least to most; ``none`` turns reasoning off.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
#: Tokens a level may spend on reasoning when no budget is given. They come on top of
#: ``max_tokens``, which bounds the answer: reasoning must not starve it.
DEFAULT_BUDGETS: Mapping[str, int] = {
    "none": 0,
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
REASONING_HELP = (
    f"one of {', '.join(EFFORTS)} (off = none), optionally with a token budget: high:8000"
)


@dataclass(frozen=True)
class Reasoning:
    """How hard a reasoning model may think: an effort level and a token budget."""

    effort: str
    #: Tokens for reasoning; ``None``: the level's default (:data:`DEFAULT_BUDGETS`).
    budget: int | None = None

    @property
    def text(self) -> str:
        """The canonical form, as the cache key stores it: ``high`` or ``high:8000``."""
        return self.effort if self.budget is None else f"{self.effort}:{self.budget}"

    @property
    def enabled(self) -> bool:
        return self.effort != "none"

    @property
    def tokens(self) -> int:
        """The reasoning budget in tokens (0 when reasoning is off)."""
        return self.budget if self.budget is not None else DEFAULT_BUDGETS[self.effort]


def parse_reasoning(value: object) -> Reasoning:
    """``high``, ``high:8000``, ``off`` or ``none`` (YAML reads ``off`` as false)."""
    if isinstance(value, Reasoning):
        return value
    if value is False:
        return Reasoning("none")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"reasoning {value!r}: expected {REASONING_HELP}")
    effort, sep, budget_text = value.strip().lower().partition(":")
    effort = "none" if effort == "off" else effort
    if effort not in EFFORTS:
        raise ValueError(f"reasoning {value!r}: expected {REASONING_HELP}")
    if not sep:
        return Reasoning(effort)
    if effort == "none":
        raise ValueError(f"reasoning {value!r}: reasoning that is off takes no budget")
    try:
        budget = int(budget_text)
    except ValueError:
        budget = 0
    if budget < 1:
        raise ValueError(f"reasoning {value!r}: the budget must be a positive number of tokens")
    return Reasoning(effort, budget)


SAMPLING_FIELDS = frozenset({"temperature", "max_tokens", "seed", "reasoning"})


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    #: ``None``: the model's own default (nothing is sent).
    reasoning: Reasoning | None = None

    def merged(self, overrides: Mapping[str, Any]) -> Sampling:
        known = {k: v for k, v in overrides.items() if k in SAMPLING_FIELDS}
        if known.get("reasoning") is not None:
            known["reasoning"] = parse_reasoning(known["reasoning"])
        return replace(self, **known) if known else self


@dataclass(frozen=True)
class ToolCall:
    """A tool call a model made."""

    id: str
    name: str
    #: The arguments as the model wrote them: JSON text, possibly malformed (untrusted).
    arguments: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Tool:
    """A tool offered to the model."""

    name: str
    description: str
    #: The JSON Schema of its arguments, as canonical JSON text (frozen and hashable).
    parameters: str

    @property
    def schema(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.parameters)
        return loaded


class TurnRole(Enum):
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class Turn:
    """One message after the user's prompt: the model's (text and tool calls) or a
    tool's result."""

    role: TurnRole
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    #: A tool result: the id of the call it answers, the tool's name, whether it failed.
    call_id: str = ""
    name: str = ""
    error: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role.value, "text": self.text}
        if self.tool_calls:
            data["tool_calls"] = [call.to_json() for call in self.tool_calls]
        if self.role is TurnRole.TOOL:
            data.update(call_id=self.call_id, name=self.name, error=self.error)
        return data


def _digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
    #: The conversation after ``prompt`` (a model turn with tool calls, their results,
    #: ...): every turn of an agent loop is a call keyed by the conversation so far.
    turns: tuple[Turn, ...] = ()
    #: The tools offered.
    tools: tuple[Tool, ...] = ()

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
        # Only when set, so entries recorded before reasoning existed keep their keys.
        if self.sampling.reasoning is not None:
            fields["reasoning"] = self.sampling.reasoning.text
        # Only when set, so answers recorded without tools keep their keys. Digests keep
        # a cache entry's fields small however long the conversation grows.
        if self.tools:
            fields["tools"] = _digest([asdict(tool) for tool in self.tools])
        if self.turns:
            fields["turns"] = _digest([turn.to_json() for turn in self.turns])
        return fields

    @cached_property
    def key(self) -> str:
        # Frozen, so the digest never goes stale; computed once per request object.
        canonical = json.dumps(self.key_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    #: Every generated token, reasoning included (what the providers bill as output).
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: The part of ``output_tokens`` spent on reasoning.
    reasoning_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        # Spelled out: vars() would give every instance a __dict__ it keeps for good.
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    @property
    def total(self) -> int:
        # reasoning_tokens are a part of output_tokens, not added to them.
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True)
class Response:
    """A model's answer and what it cost; ``cached`` is True when it was replayed."""

    #: The final answer: what checks see, without any reasoning.
    text: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    stop_reason: str | None = None
    reported_model: str | None = None
    recorded_at: str | None = None
    cached: bool = False
    #: Backend-specific facts worth keeping, e.g. a GGUF file's sha256.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The reasoning the model showed before its answer (thinking blocks, ``<think>``
    #: text, ``reasoning_content``); ``None`` when it showed none.
    reasoning: str | None = None
    #: The tools the model called (an agent loop answers them and asks again).
    tool_calls: tuple[ToolCall, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["extra"] = dict(self.extra)
        data.pop("cached")
        if self.tool_calls:
            data["tool_calls"] = [call.to_json() for call in self.tool_calls]
        else:  # entries recorded without tools stay byte for byte as they were
            data.pop("tool_calls")
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
            reasoning=data.get("reasoning"),
            tool_calls=tool_calls_from_json(data.get("tool_calls")),
        )


def tool_calls_from_json(data: Any) -> tuple[ToolCall, ...]:
    """Tool calls read back from a cache entry (untrusted: ValueError when malformed)."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ValueError("'tool_calls' is not a list")
    calls = []
    for item in data:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(name), str) for name in ("id", "name", "arguments")
        ):
            raise ValueError("a tool call is not an object of id, name and arguments strings")
        calls.append(ToolCall(item["id"], item["name"], item["arguments"]))
    return tuple(calls)


def cache_model(spec: ModelSpec) -> str:
    """The model as a cache key names it: a local model by its file name, never its path,
    and a Hugging Face model by repository and quantization or file, as the user wrote it
    (so replay needs neither the file nor the Hub)."""
    return Path(spec.model).name if spec.provider == "gguf" else spec.model


def request_for(
    spec: ModelSpec,
    *,
    prompt: str,
    system: str | None = None,
    sampling: Sampling | None = None,
    trial: int = 0,
    tools: tuple[Tool, ...] = (),
) -> Request:
    return Request(
        provider=spec.provider,
        model=cache_model(spec),
        base_url=spec.base_url,
        system=system,
        prompt=prompt,
        sampling=sampling or Sampling(),
        trial=trial,
        prompt_format="auto" if spec.local else None,
        tools=tools,
    )
