"""Conversations with tools in the providers' wire formats, and tool calls read back.

Anthropic Messages: a model turn is an ``assistant`` message of ``text`` and
``tool_use`` blocks; its results go back in one ``user`` message of ``tool_result``
blocks. OpenAI Chat Completions: an ``assistant`` message with ``tool_calls`` whose
arguments are JSON text, each answered by a ``tool`` message naming its call. SDK
objects are read by attribute only, so neither SDK is imported here.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_skills.backends.base import MalformedBodyError, sendable, shape
from pytest_skills.models import Request, ToolCall, TurnRole


def arguments_object(arguments: str) -> dict[str, Any]:
    """Arguments as the object Anthropic's ``tool_use.input`` must be. A model's malformed
    arguments (OpenAI's are free text) go back as ``{}``: the tool result says what was
    wrong, and the API would refuse the conversation otherwise."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def anthropic_messages(request: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": sendable(request.prompt)}]
    results: list[dict[str, Any]] = []
    for turn in request.turns:
        if turn.role is TurnRole.TOOL:
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": turn.call_id,
                "content": turn.text,
            }
            if turn.error:
                result["is_error"] = True
            results.append(result)
            continue
        if results:
            messages.append({"role": "user", "content": results})
            results = []
        content: list[dict[str, Any]] = []
        if turn.text:
            content.append({"type": "text", "text": turn.text})
        content += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": arguments_object(c.arguments)}
            for c in turn.tool_calls
        ]
        messages.append({"role": "assistant", "content": content or turn.text})
    if results:
        messages.append({"role": "user", "content": results})
    return messages


def anthropic_tools(request: Request) -> list[dict[str, Any]]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": tool.schema}
        for tool in request.tools
    ]


def anthropic_tool_calls(content: Any) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(
            str(block.id), str(block.name), json.dumps(block.input, sort_keys=True, default=str)
        )
        for block in content
        if getattr(block, "type", None) == "tool_use"
    )


def openai_messages(request: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system is not None:
        # The skill goes first so the provider's automatic prefix cache (and a
        # local server's KV-cache reuse) covers it on every case after the first.
        messages.append({"role": "system", "content": sendable(request.system)})
    messages.append({"role": "user", "content": sendable(request.prompt)})
    for turn in request.turns:
        if turn.role is TurnRole.TOOL:
            messages.append({"role": "tool", "tool_call_id": turn.call_id, "content": turn.text})
            continue
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        if turn.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in turn.tool_calls
            ]
        messages.append(message)
    return messages


def openai_tools(request: Request) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.schema,
            },
        }
        for tool in request.tools
    ]


def openai_tool_calls(message: Any) -> tuple[ToolCall, ...]:
    """The function calls of a message; MalformedBodyError names a part of the wrong shape
    (the SDK builds its objects from the body without checking them)."""
    listed = getattr(message, "tool_calls", None) or ()
    if not isinstance(listed, (list, tuple)):
        raise MalformedBodyError(f"'tool_calls' is {shape(listed)}, not a list")
    calls = []
    for index, call in enumerate(listed):
        function = getattr(call, "function", None)
        if function is None:  # a custom (non-function) tool call: none are offered
            continue
        if isinstance(function, (str, int, float, list, dict)):
            raise MalformedBodyError(
                f"'tool_calls[{index}].function' is {shape(function)}, not an object"
            )
        calls.append(
            ToolCall(
                str(getattr(call, "id", "") or ""),
                str(getattr(function, "name", "") or ""),
                str(getattr(function, "arguments", "") or ""),
            )
        )
    return tuple(calls)
