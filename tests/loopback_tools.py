"""Tool calling for the loopback server: the two wire formats as the providers document
them, what each API refuses, and scripted tool-calling models.

Anthropic Messages: ``tools`` of ``{name, description, input_schema}``; the model
answers ``tool_use`` blocks (``id``, ``name``, ``input`` object) with ``stop_reason:
tool_use``; every ``tool_use`` must be answered by a ``tool_result`` block in the next
user message. OpenAI Chat Completions: ``tools`` of ``{type: function, function: {name,
description, parameters}}``; the model answers ``tool_calls`` (``id``, ``type:
function``, ``function: {name, arguments}`` with arguments as JSON text) with
``finish_reason: tool_calls``; each call must be answered by a ``tool`` message whose
``tool_call_id`` names it before the next assistant message.

The scripted models read the catalog the harness puts in the system prompt and the tool
results in the conversation, as a model would; they are chosen by model name with
:func:`tool_model`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.loopback import Call


@dataclass(frozen=True)
class ToolUse:
    """A responder's answer that calls tools: ``(name, arguments)`` pairs, arguments an
    object or (OpenAI only: the text is sent as is) a string, malformed or not."""

    calls: tuple[tuple[str, Any], ...]
    text: str = ""


@dataclass(frozen=True)
class Step:
    """One message of the conversation after the user's prompt, in either format."""

    role: str  # "assistant" | "tool"
    text: str = ""
    #: assistant: (id, name, arguments as text)
    calls: tuple[tuple[str, str, str], ...] = ()
    #: tool: the id of the call it answers
    call_id: str = ""
    error: bool = False


def history(api: str, body: dict[str, Any]) -> tuple[Step, ...]:
    """The conversation after the first user message, flattened across the formats."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ()
    steps: list[Step] = []
    seen_user = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if api == "anthropic" and isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_result":
                    result = block.get("content")
                    text = result if isinstance(result, str) else json.dumps(result)
                    steps.append(
                        Step(
                            "tool",
                            text,
                            call_id=str(block.get("tool_use_id")),
                            error=bool(block.get("is_error")),
                        )
                    )
            if role == "assistant":
                calls = tuple(
                    (str(b.get("id")), str(b.get("name")), json.dumps(b.get("input")))
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "tool_use"
                )
                text = "".join(
                    str(b.get("text", ""))
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "text"
                )
                steps.append(Step("assistant", text, calls))
            continue
        if role == "user":
            seen_user = True
        elif role == "assistant" and seen_user:
            calls = tuple(
                (
                    str(c.get("id")),
                    str((c.get("function") or {}).get("name")),
                    str((c.get("function") or {}).get("arguments")),
                )
                for c in message.get("tool_calls") or ()
                if isinstance(c, dict)
            )
            steps.append(Step("assistant", content if isinstance(content, str) else "", calls))
        elif role == "tool":
            steps.append(
                Step(
                    "tool",
                    content if isinstance(content, str) else "",
                    call_id=str(message.get("tool_call_id")),
                )
            )
    return tuple(steps)


def tool_problem(api: str, body: dict[str, Any]) -> str | None:
    """What the real API would refuse in the tools or the tool turns of this request."""
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if api == "anthropic":
                if not isinstance(tool, dict) or not tool.get("name") or "input_schema" not in tool:
                    return f"tools.{i}: name and input_schema are required"
            elif (
                not isinstance(tool, dict)
                or tool.get("type") != "function"
                or not (tool.get("function") or {}).get("name")
            ):
                return f"tools[{i}]: a function tool needs type 'function' and function.name"
    steps = history(api, body)
    pending: set[str] = set()
    for step in steps:
        if step.role == "assistant":
            if pending:
                return f"tool call ids without results: {', '.join(sorted(pending))}"
            pending = {call_id for call_id, _, _ in step.calls}
        elif step.call_id not in pending:
            return f"a tool result answers {step.call_id!r}, which no preceding call made"
        else:
            pending.discard(step.call_id)
    if pending:
        return f"tool call ids without results: {', '.join(sorted(pending))}"
    return None


# --- scripted models ------------------------------------------------------------------------

_CATALOG = re.compile(r"<name>(.*?)</name>\s*<description>(.*?)</description>", re.S)
_WORD = re.compile(r"[a-z0-9]{4,}")


def catalog(system: str | None) -> dict[str, str]:
    """The skills of the catalog in the system prompt: name to description."""
    return {name.strip(): desc.strip() for name, desc in _CATALOG.findall(system or "")}


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def best_match(prompt: str, skills: dict[str, str]) -> str | None:
    """The skill whose description shares the most words with the prompt (none shared:
    None); ties go to the first in the catalog."""
    asked = _words(prompt)
    best, score = None, 0
    for name, description in skills.items():
        shared = len(asked & _words(description))
        if shared > score:
            best, score = name, shared
    return best


def _answer(call: Call) -> str:
    """The final answer: the prompt, and what the tools returned (so a check can see
    whether the skill's text reached the model)."""
    results = [step.text for step in call.history if step.role == "tool" and not step.error]
    if not call.tools and call.system:  # a skill in the system prompt is used as it is
        results.append(call.system)
    text = f"answer: {call.prompt}"
    return text + ("\n" + "\n".join(results) if results else "")


def _activated(call: Call) -> bool:
    return any(name == "activate_skill" for step in call.history for _, name, _ in step.calls)


def activator(call: Call) -> str | ToolUse:
    """Activates the skill whose description matches the question, reads the first file
    its listing names under references/, then answers."""
    if not call.tools:
        return _answer(call)
    if not _activated(call):
        chosen = best_match(call.prompt, catalog(call.system))
        return ToolUse((("activate_skill", {"name": chosen}),)) if chosen else _answer(call)
    last = call.history[-1] if call.history else None
    read = any(name == "read_skill_file" for step in call.history for _, name, _ in step.calls)
    if last is not None and not read:
        listed = re.search(r"<file>(references/[^<]+)</file>", last.text)
        skill = re.search(r'<skill_content name="([^"]+)"', last.text)
        if listed and skill:
            args = {"name": skill.group(1), "path": listed.group(1)}
            return ToolUse((("read_skill_file", args),))
    return _answer(call)


def never(call: Call) -> str:
    """Never calls a tool."""
    return _answer(call)


def named(call: Call) -> str | ToolUse:
    """Activates a skill only when the question names it ("the NAME skill")."""
    if call.tools and not _activated(call):
        for name in catalog(call.system):
            if f"{name} skill" in call.prompt:
                return ToolUse((("activate_skill", {"name": name}),))
    return _answer(call)


def looper(call: Call) -> str | ToolUse:
    """Activates the first skill of the catalog again and again."""
    names = list(catalog(call.system))
    if not call.tools or not names:
        return _answer(call)
    return ToolUse((("activate_skill", {"name": names[0]}),))


def malformed(call: Call) -> str | ToolUse:
    """An unknown tool, then malformed arguments, then a path outside the skill, then an
    empty answer."""
    names = list(catalog(call.system)) or ["none"]
    turn = sum(step.role == "assistant" for step in call.history)
    script: list[ToolUse] = [
        ToolUse((("run_script", {"command": "rm -rf /"}),)),
        ToolUse((("activate_skill", '{"name": ' if call.api == "openai" else {"skill": 3}),)),
        ToolUse((("read_skill_file", {"name": names[0], "path": "../../../etc/passwd"}),)),
    ]
    return script[turn] if turn < len(script) else ""


TOOL_MODELS = {
    "activator": activator,
    "never": never,
    "named": named,
    "looper": looper,
    "malformed": malformed,
}


@dataclass
class ToolModels:
    """A responder that plays the scripted model named by the request's model (any
    prefix: ``claude-activator``, ``gpt-never``), counting the requests each got."""

    counts: dict[str, int] = field(default_factory=dict)

    def __call__(self, call: Call) -> str | ToolUse:
        for name, model in TOOL_MODELS.items():
            if call.model.endswith(name):
                self.counts[name] = self.counts.get(name, 0) + 1
                return model(call)
        raise ValueError(f"no scripted tool model named like {call.model!r}")
