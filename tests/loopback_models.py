"""How the emulated models treat reasoning, for :mod:`tests.loopback`.

What the real services do, as their errors and responses show it:

* OpenAI's reasoning models (o-series, gpt-5, gpt-5-mini/nano, -pro) refuse
  ``max_tokens`` (400 ``unsupported_parameter``) and any ``temperature`` but 1 (400
  ``unsupported_value``); gpt-5.1 and later (gpt-5.x, gpt-6) default to
  ``reasoning_effort: none`` and take a temperature only then. Reasoning text is never
  returned by Chat Completions; its size is ``completion_tokens_details.reasoning_tokens``,
  counted inside ``completion_tokens`` and inside ``max_completion_tokens``, so a small
  limit leaves an empty answer with ``finish_reason: length``. Models that do not reason
  refuse ``reasoning_effort``.
* OpenAI-compatible servers running local reasoning models (llama-server, vLLM) return
  the model's ``<think>`` text inline, or split into ``reasoning_content`` when their
  reasoning parser is on.
* Anthropic returns ``thinking`` blocks before the text when ``thinking`` is on;
  ``budget_tokens`` must be at least 1024 and below ``max_tokens``, thinking counts
  in ``output_tokens`` and in ``usage.output_tokens_details.thinking_tokens``; the 4.5
  models take only ``enabled`` thinking, later ones ``adaptive`` (with
  ``output_config.effort``) too.

A responder writes ``<think>reasoning</think>answer``; the emulation decides what of it
the client sees, as the model and the request say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_ALWAYS_RE = re.compile(r"^(o\d|gpt-5(-mini|-nano)?(-\d{4}-\d{2}-\d{2})?$|gpt-5[^/]*-pro)")
_OPTIONAL_RE = re.compile(r"^gpt-(5\.\d+|6)")
_OPENAI_CHAT_RE = re.compile(r"^(gpt-4|gpt-3\.5|chatgpt-|gpt-5(\.\d+)?-chat)")
#: Claude models that think only with a budget (``enabled``), not ``adaptive``.
BUDGET_ONLY_CLAUDE = re.compile(r"^claude-(haiku|sonnet|opus)-4-5")

ALWAYS_EFFORTS = ("minimal", "low", "medium", "high")
OPTIONAL_EFFORTS = ("none", "low", "medium", "high", "xhigh")
ANTHROPIC_EFFORTS = ("low", "medium", "high", "xhigh", "max")
#: Said when a responder gives no reasoning but the model was asked to reason.
DEFAULT_THOUGHT = "Let me think about what is asked."


@dataclass(frozen=True)
class OpenAIModel:
    """What one model name accepts on Chat Completions."""

    #: "always" (reasoning, no temperature), "optional" (effort none by default),
    #: "chat" (an OpenAI model without reasoning), "local" (a compatible server's model).
    kind: str

    @property
    def reasons(self) -> bool:
        return self.kind in ("always", "optional")

    @property
    def default_effort(self) -> str | None:
        return {"always": "medium", "optional": "none"}.get(self.kind)

    @property
    def efforts(self) -> tuple[str, ...]:
        return ALWAYS_EFFORTS if self.kind == "always" else OPTIONAL_EFFORTS


def openai_model(name: str, reasoning_models: frozenset[str]) -> OpenAIModel:
    """``reasoning_models``: names of deployments that run a reasoning model (as on
    Azure, where the deployment's name says nothing of the model)."""
    if name in reasoning_models or _ALWAYS_RE.match(name):
        return OpenAIModel("always")
    if _OPTIONAL_RE.match(name):
        return OpenAIModel("optional")
    if _OPENAI_CHAT_RE.match(name):
        return OpenAIModel("chat")
    return OpenAIModel("local")


def split_think(text: str) -> tuple[str | None, str]:
    """A responder's ``<think>...</think>`` part and the rest."""
    match = re.match(r"\s*<think>(.*?)</think>\s*(.*)\Z", text, re.S)
    if match is None:
        return None, text
    return match.group(1).strip(), match.group(2)


@dataclass(frozen=True)
class Problem:
    """A request the real API would refuse with 400: its message, and for OpenAI the
    ``param`` and ``code`` it names."""

    message: str
    param: str | None = None
    code: str | None = None


def thinking_problem(model: str, body: dict[str, Any], budget_only: bool = False) -> str | None:
    """What the Messages API refuses in a request's thinking settings, if anything;
    ``budget_only``: the model takes only ``enabled`` thinking, whatever its name."""
    thinking = body.get("thinking")
    effort = (body.get("output_config") or {}).get("effort")
    if effort is not None and effort not in ANTHROPIC_EFFORTS:
        return f"output_config.effort: Input should be {', '.join(map(repr, ANTHROPIC_EFFORTS))}"
    if thinking is None:
        return None
    kind = thinking.get("type")
    if kind == "adaptive" and (budget_only or BUDGET_ONLY_CLAUDE.match(model)):
        return f"thinking.type: 'adaptive' is not supported by {model}; use 'enabled'"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= body["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    elif kind not in ("adaptive", "disabled"):
        return f"thinking.type: Input tag {kind!r} does not match any of the expected tags"
    return None


def openai_problem(body: dict[str, Any], model: OpenAIModel) -> Problem | None:
    """What Chat Completions refuses in a request to ``model``, as the real 400 says it."""
    for name in ("model", "messages"):
        if name not in body:
            return Problem(f"Missing required parameter: '{name}'.", name, "missing_required")
    for name in ("max_tokens", "max_completion_tokens"):
        limit = body.get(name)
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return Problem(f"Invalid '{name}': integer below minimum value.", name)
    if model.reasons and "max_tokens" in body:
        return Problem(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    effort = body.get("reasoning_effort")
    if effort is not None and model.kind == "chat":
        return Problem(
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            "reasoning_effort",
            "unsupported_parameter",
        )
    if effort is not None and model.reasons and effort not in model.efforts:
        supported = ", ".join(f"'{e}'" for e in model.efforts)
        return Problem(
            f"Unsupported value: 'reasoning_effort' does not support '{effort}' with this "
            f"model. Supported values are: {supported}.",
            "reasoning_effort",
            "unsupported_value",
        )
    temperature = body.get("temperature")
    thinking = (effort or model.default_effort) not in (None, "none")
    if temperature is not None and temperature != 1 and model.reasons and thinking:
        return Problem(
            f"Unsupported value: 'temperature' does not support {temperature:g} with this "
            "model. Only the default (1) value is supported.",
            "temperature",
            "unsupported_value",
        )
    return None
