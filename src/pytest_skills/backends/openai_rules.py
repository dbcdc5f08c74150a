"""Which Chat Completions parameters an OpenAI model accepts, known up front or learned.

OpenAI's reasoning models (the o-series, gpt-5 and later) answer HTTP 400 to
``max_tokens`` (``unsupported_parameter``: they take ``max_completion_tokens``) and to
any ``temperature`` but the default (``unsupported_value``); gpt-5.1 and later accept a
temperature only while ``reasoning_effort`` is ``none``, their default. Models that do
not reason refuse ``reasoning_effort``. The rules below are what the model ids say
(checked with :data:`~pytest_skills.models.ALIASES_CHECKED`); a server that disagrees
(an Azure deployment with a name of its own, a proxy) is handled by
:func:`adaptation_for`. Pure code: no SDK.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_skills.models import Reasoning, Request
from pytest_skills.models.requests import DEFAULT_BUDGETS

MAX_TOKENS = "max_tokens"
MAX_COMPLETION_TOKENS = "max_completion_tokens"

#: Model families by what they accept.
ALWAYS_REASONING = "reasoning"  # no temperature, default effort medium
OPTIONAL_REASONING = "optional"  # temperature only with effort none, their default
CHAT = "chat"  # no reasoning_effort
UNKNOWN = "unknown"  # sent as asked; the server's 400s teach the rest

_CHAT_RE = re.compile(r"^(gpt-4|gpt-3\.5|chatgpt-|gpt-5(\.\d+)?-chat)")
_ALWAYS_RE = re.compile(
    r"^(o\d|gpt-5(-mini|-nano)?(-\d{4}-\d{2}-\d{2})?$|gpt-5[^/]*-(pro|codex)|codex)"
)
_OPTIONAL_RE = re.compile(r"^gpt-(5\.\d+|6)")
_REFUSAL_RE = re.compile(r"^Unsupported (parameter|value): '([a-z_]+)'")


def model_family(model: str) -> str:
    """Which rule family an OpenAI model id belongs to (``openai/`` prefixes ignored)."""
    name = model.lower().rpartition("/")[2]
    for family, pattern in (
        (CHAT, _CHAT_RE),
        (ALWAYS_REASONING, _ALWAYS_RE),
        (OPTIONAL_REASONING, _OPTIONAL_RE),
    ):
        if pattern.match(name):
            return family
    return UNKNOWN


@dataclass(frozen=True)
class Adaptation:
    """A parameter a server refused this run, and what is sent in its place."""

    #: What the parameter does: "token_limit", "temperature" or "reasoning_effort".
    slot: str
    refused: str
    #: The parameter that carries the value instead; ``None``: it is not sent.
    replacement: str | None

    @property
    def note(self) -> str:
        if self.replacement:
            return f"the server refused {self.refused}: sent {self.replacement} instead"
        return f"the server refused {self.refused}: not sent"

    def applied(self, params: Mapping[str, Any]) -> dict[str, Any]:
        adapted = dict(params)
        if self.refused in adapted:
            value = adapted.pop(self.refused)
            if self.replacement:
                adapted[self.replacement] = value
        return adapted


@dataclass(frozen=True)
class ParameterRules:
    """What one request to one model sends, besides the model and the messages."""

    family: str
    token_limit: str
    send_temperature: bool
    #: The ``reasoning_effort`` sent; ``None``: not sent.
    reasoning_effort: str | None
    #: Tokens added to ``max_tokens`` so reasoning cannot use up the answer's share.
    reasoning_allowance: int

    def params(self, request: Request, adaptations: Iterable[Adaptation] = ()) -> dict[str, Any]:
        sampling = request.sampling
        params: dict[str, Any] = {self.token_limit: sampling.max_tokens + self.reasoning_allowance}
        if self.send_temperature:
            params["temperature"] = sampling.temperature
        if sampling.seed is not None:
            params["seed"] = sampling.seed
        if self.reasoning_effort is not None:
            params["reasoning_effort"] = self.reasoning_effort
        for adaptation in adaptations:
            params = adaptation.applied(params)
        return params

    def describe(self) -> str | None:
        """A few words for the run's header, or None when nothing differs from the plain form."""
        parts = []
        if self.token_limit != MAX_TOKENS:
            limit = self.token_limit
            if self.reasoning_allowance:
                limit += f" (max_tokens + {self.reasoning_allowance} for reasoning)"
            parts.append(limit)
        if not self.send_temperature:
            parts.append("no temperature")
        if self.reasoning_effort is not None:
            parts.append(f"reasoning_effort {self.reasoning_effort}")
        return ", ".join(parts) or None


def parameter_rules(model: str, reasoning: Reasoning | None, *, compatible: bool) -> ParameterRules:
    """The rules for ``model``; ``compatible``: a server named with ``@base_url``, which
    gets the long-standing ``max_tokens`` unless the model is one of OpenAI's reasoning
    models (llama-server and older vLLM do not all know ``max_completion_tokens``)."""
    family = model_family(model)
    reasons = family in (ALWAYS_REASONING, OPTIONAL_REASONING)
    token_limit = MAX_TOKENS if compatible and not reasons else MAX_COMPLETION_TOKENS
    if family == ALWAYS_REASONING:
        send_temperature = False
    elif family == OPTIONAL_REASONING:
        send_temperature = reasoning is None or not reasoning.enabled
    else:
        send_temperature = True
    effort = None if reasoning is None or family == CHAT else reasoning.effort
    if reasoning is not None and family != CHAT:
        allowance = reasoning.tokens
    else:
        allowance = DEFAULT_BUDGETS["medium"] if family == ALWAYS_REASONING else 0
    return ParameterRules(family, token_limit, send_temperature, effort, allowance)


def adaptation_for(body: Mapping[str, Any], sent: Mapping[str, Any]) -> Adaptation | None:
    """The adaptation a 400 body asks for, if it refuses a parameter we can do without.

    OpenAI says ``{"code": "unsupported_parameter", "param": "max_tokens", ...}``; some
    proxies keep only the message ("Unsupported parameter: 'max_tokens' is not ..."),
    so the parameter is read from there when ``param`` is missing.
    """
    code = body.get("code")
    message = str(body.get("message") or "")
    refusal = _REFUSAL_RE.match(message)
    if code not in ("unsupported_parameter", "unsupported_value") and refusal is None:
        return None
    param = body.get("param") or (refusal.group(2) if refusal else None)
    kind = code if code or refusal is None else f"unsupported_{refusal.group(1)}"
    if not isinstance(param, str) or param not in sent:
        return None
    if param in (MAX_TOKENS, MAX_COMPLETION_TOKENS) and kind == "unsupported_parameter":
        other = MAX_COMPLETION_TOKENS if param == MAX_TOKENS else MAX_TOKENS
        return Adaptation("token_limit", param, other)
    if param == "temperature":
        return Adaptation("temperature", param, None)
    if param == "reasoning_effort" and kind == "unsupported_parameter":
        return Adaptation("reasoning_effort", param, None)
    return None
