"""A small text protocol for tool calls, for models that have no tool-calling format.

A local model without tools in its chat template (or without a template at all, like
the Gemma 3 270M demo) is told the tools in plain words and calls one by writing a line

    CALL activate_skill {"name": "release"}

Results come back as ``RESULT name:`` ... ``END RESULT`` blocks, and a reply without a
``CALL`` line is the final answer. Whatever the model writes is parsed leniently and
recorded as it came: arguments that are not JSON stay as written, and the harness says
so. Call ids are made from the turn and position, so the same conversation always
renders to the same text (and the same cache key).
"""

from __future__ import annotations

import re

from pytest_skills.models import Request, ToolCall, TurnRole

PROTOCOL = "text"
CALL_PREFIX = "CALL "
#: Where a base model that has written its call line would go on inventing results.
STOPS = ("\nRESULT", "\nQuestion:", "\nEND RESULT")
_CALL = re.compile(r"^\s*CALL\s+([A-Za-z0-9_.-]+)\s*(.*)$")


def instructions(request: Request) -> str:
    tools = "\n".join(
        f"- {tool.name}: {tool.description} Arguments (JSON): {tool.parameters}"
        for tool in request.tools
    )
    return (
        "You can call these tools:\n"
        f"{tools}\n"
        "To call a tool, write a line of the form CALL tool_name {JSON arguments} and stop; "
        'for example: CALL activate_skill {"name": "some-skill"}. The result comes back '
        "after RESULT. When you can answer, write the answer as plain text, with no CALL line."
    )


def system_text(request: Request) -> str:
    head = f"{request.system.rstrip()}\n\n" if request.system else ""
    return head + instructions(request)


def _result(name: str, text: str) -> str:
    return f"RESULT {name}:\n{text.strip()}\nEND RESULT"


def transcript(request: Request) -> list[tuple[str, str]]:
    """The conversation after the prompt as (role, text): ``assistant`` turns as the model
    wrote them, tool results as ``user`` turns."""
    turns = []
    for turn in request.turns:
        if turn.role is TurnRole.TOOL:
            turns.append(("user", _result(turn.name, turn.text)))
        else:
            calls = [f"{CALL_PREFIX}{c.name} {c.arguments}".rstrip() for c in turn.tool_calls]
            turns.append(("assistant", "\n".join([turn.text, *calls]).strip()))
    return turns


def completion_text(request: Request, question_cue: str, answer_cue: str) -> str:
    """The whole conversation as one plain prompt (the completion layout)."""
    parts = [f"{system_text(request)}\n\n{question_cue}{request.prompt.strip()}"]
    for role, text in transcript(request):
        parts.append(f"{answer_cue} {text}" if role == "assistant" else f"\n{text}")
    return "".join(parts) + answer_cue


def chat_turns(request: Request) -> list[dict[str, str]]:
    """The conversation after the prompt as chat messages (results as user turns)."""
    return [{"role": role, "content": text} for role, text in transcript(request)]


def parse(text: str, turn: int) -> tuple[str, tuple[ToolCall, ...]]:
    """The reply's text before any call line, and its calls (ids ``text-TURN-N``)."""
    lines = text.splitlines()
    calls: list[ToolCall] = []
    before: list[str] = []
    for line in lines:
        match = _CALL.match(line)
        if match:
            arguments = match.group(2).strip()
            calls.append(ToolCall(f"text-{turn}-{len(calls)}", match.group(1), arguments))
        elif not calls:
            before.append(line)
    if not calls:
        return text, ()
    return "\n".join(before).strip(), tuple(calls)
