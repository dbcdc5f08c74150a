"""The on-demand arm: skills offered the way agents load them.

Following the Agent Skills client implementation guide, the model sees a catalog (name
and description of every skill in scope) in its system prompt and two tools:
``activate_skill(name)`` returns the SKILL.md body without front matter and a listing
of the skill's files; ``read_skill_file(name, path)`` returns one of those files as
text, confined to that skill's directory. Nothing from a skill is executed. The loop
asks the model again after each round of tool results, up to a turn budget; its final
text answer is what the case's checks grade.

Every turn is a request keyed by the conversation so far, so a recorded trajectory
replays offline. Whatever the model does wrong (an unknown tool, malformed arguments,
a path outside the skill, a loop past the budget, an empty answer) is a recorded step
with its reason. No pytest import.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from pytest_skills.formats import FormatError, Skill, load_skill
from pytest_skills.models import ErrorKind, Request, Response, Tool, ToolCall, Turn, TurnRole

DEFAULT_TURNS = 8
#: The most of one file ``read_skill_file`` returns; longer files are cut with a note.
MAX_FILE_BYTES = 64 * 1024
#: The most files a listing names.
MAX_LISTED = 100
#: Directories never searched for skills nor listed: tools' and packagers' own.
SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".tox"})

ACTIVATE = "activate_skill"
READ = "read_skill_file"


class StepKind(Enum):
    ACTIVATE = "activate"
    READ = "read"
    TOOL_ERROR = "tool-error"
    ANSWER = "answer"
    EMPTY_ANSWER = "empty-answer"
    BUDGET = "budget"
    CALL_FAILED = "call-failed"


@dataclass(frozen=True)
class Step:
    turn: int
    kind: StepKind
    #: The tool called (empty for answers and the budget).
    tool: str = ""
    #: The skill activated, the file read, or the reason of an error.
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "kind": self.kind.value,
            "tool": self.tool,
            "detail": self.detail,
        }

    @property
    def line(self) -> str:
        what = {
            StepKind.ACTIVATE: f"activated skill {self.detail}",
            StepKind.READ: f"read {self.detail}",
            StepKind.TOOL_ERROR: f"{self.tool or 'tool'} refused: {self.detail}",
            StepKind.ANSWER: "answered",
            StepKind.EMPTY_ANSWER: f"empty answer: {self.detail}",
            StepKind.BUDGET: self.detail,
            StepKind.CALL_FAILED: f"call failed: {self.detail}",
        }[self.kind]
        return f"turn {self.turn}: {what}"


@dataclass(frozen=True)
class Trajectory:
    steps: tuple[Step, ...]
    #: The final answer; None when the loop ended without one.
    answer: Response | None
    error: str | None = None
    error_kind: ErrorKind | None = None
    #: Model turns asked, and how many were replayed from the cache.
    turns: int = 0
    replayed: int = 0

    @property
    def activated(self) -> tuple[str, ...]:
        """The skills activated, in order, each once."""
        return tuple(dict.fromkeys(s.detail for s in self.steps if s.kind is StepKind.ACTIVATE))

    def to_json(self, redact: Callable[[str], str] = str) -> dict[str, Any]:
        """For the reports; ``redact`` takes secrets out of what the model wrote (a tool
        error quotes its arguments)."""
        steps = [replace(step, detail=redact(step.detail)) for step in self.steps]
        return {
            "turns": self.turns,
            "replayed": self.replayed,
            "steps": [step.to_json() for step in steps],
            "files_read": [s.detail for s in steps if s.kind is StepKind.READ],
            "tool_errors": [s.detail for s in steps if s.kind is StepKind.TOOL_ERROR],
        }

    def lines(self) -> list[str]:
        return [step.line for step in self.steps]


@dataclass(frozen=True)
class ToolResult:
    text: str
    step: Step
    error: bool = False


def find_skills(root: Path) -> list[Path]:
    """Every SKILL.md under ``root``, in path order (tool directories skipped)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        if "SKILL.md" in files:
            found.append(Path(folder) / "SKILL.md")
    return found


@dataclass(frozen=True)
class Catalog:
    """The skills a model may load, and the tools that load them."""

    skills: tuple[Skill, ...]

    @classmethod
    def of(cls, skills: Iterable[Skill]) -> Catalog:
        by_name: dict[str, Skill] = {}
        for skill in skills:
            by_name.setdefault(skill.name, skill)
        return cls(tuple(sorted(by_name.values(), key=lambda s: s.name)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(skill.name for skill in self.skills)

    @property
    def system(self) -> str:
        entries = "".join(
            f"  <skill>\n    <name>{s.name}</name>\n"
            f"    <description>{s.description.strip()}</description>\n  </skill>\n"
            for s in self.skills
        )
        return (
            "The following skills provide specialized instructions for specific tasks.\n"
            "When a task matches a skill's description, call the activate_skill tool with "
            "the skill's name to load its full instructions, and read_skill_file for a file "
            "the skill refers to.\n\n"
            f"<available_skills>\n{entries}</available_skills>\n"
        )

    @property
    def tools(self) -> tuple[Tool, ...]:
        names = list(self.names)
        activate = {
            "type": "object",
            "properties": {"name": {"type": "string", "enum": names}},
            "required": ["name"],
        }
        read = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": names},
                "path": {"type": "string", "description": "relative to the skill's directory"},
            },
            "required": ["name", "path"],
        }
        return (
            Tool(ACTIVATE, "Load a skill's full instructions by name.", _canonical(activate)),
            Tool(READ, "Read one file of a skill, by its path in the skill.", _canonical(read)),
        )

    def skill(self, name: str) -> Skill | None:
        return next((s for s in self.skills if s.name == name), None)

    def execute(self, turn: int, call: ToolCall) -> ToolResult:
        """Answer one tool call; a refusal is a result the model sees, and a step."""

        def refused(reason: str) -> ToolResult:
            return ToolResult(
                f"error: {reason}", Step(turn, StepKind.TOOL_ERROR, call.name, reason), True
            )

        if call.name not in (ACTIVATE, READ):
            return refused(f"unknown tool {call.name!r}: use {ACTIVATE} or {READ}")
        args = _arguments(call.arguments)
        if isinstance(args, str):
            return refused(args)
        name = args.get("name")
        skill = self.skill(name) if isinstance(name, str) else None
        if skill is None:
            return refused(f"'name' must be one of {', '.join(self.names)}, not {name!r}")
        if call.name == ACTIVATE:
            return ToolResult(
                _activation(skill), Step(turn, StepKind.ACTIVATE, call.name, skill.name)
            )
        path = args.get("path")
        if not isinstance(path, str) or not path.strip():
            return refused("'path' must be a file's path in the skill")
        text = read_confined(skill.path.parent, path)
        if text.startswith("error: "):
            return refused(text.removeprefix("error: "))
        return ToolResult(text, Step(turn, StepKind.READ, call.name, f"{skill.name}/{path}"))


def _canonical(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _arguments(text: str) -> dict[str, Any] | str:
    """The call's arguments as an object, or why they are not one."""
    try:
        value = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError):
        return f"malformed arguments (not JSON): {text[:80]!r}"
    if not isinstance(value, dict):
        return f"malformed arguments: expected an object, got {type(value).__name__}"
    return value


def listing(directory: Path) -> list[str]:
    """The skill's files, relative, sorted, at most :data:`MAX_LISTED`."""
    files = []
    for folder, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if name != "SKILL.md" and not name.startswith(".") and path.is_file():
                files.append(path.relative_to(directory).as_posix())
    return files[:MAX_LISTED]


def _activation(skill: Skill) -> str:
    files = "".join(f"  <file>{name}</file>\n" for name in listing(skill.path.parent))
    return (
        f'<skill_content name="{skill.name}">\n{skill.body.strip()}\n\n'
        f"Skill directory: {skill.name}/ (read files with {READ})\n"
        f"<skill_resources>\n{files}</skill_resources>\n</skill_content>"
    )


def read_confined(directory: Path, path: str) -> str:
    """The text of ``path`` inside ``directory``, or ``error: why``. No absolute path, no
    ``..``, no symlink that leads out; at most :data:`MAX_FILE_BYTES`."""
    relative = Path(path)
    if relative.is_absolute() or ".." in relative.parts:
        return f"error: {path!r} is outside the skill: give a path inside its directory"
    root = directory.resolve()
    target = (directory / relative).resolve()
    if not target.is_relative_to(root):
        return f"error: {path!r} leads outside the skill (a symlink)"
    if not target.is_file():
        return f"error: no file {path!r} in the skill"
    try:
        with target.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        return f"error: cannot read {path!r}: {error.strerror or error}"
    if b"\0" in data:
        return f"error: {path!r} is not a text file"
    text = data[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
    if len(data) > MAX_FILE_BYTES:
        text += f"\n[cut: the file is longer than {MAX_FILE_BYTES} bytes]"
    return text


#: Answers one request: the final response, or why there is none (and its kind).
Ask = Callable[[Request], "tuple[Response | None, str | None, ErrorKind | None]"]


def run(
    first: Request,
    catalog: Catalog,
    ask: Ask,
    budget: int = DEFAULT_TURNS,
    *,
    until_activated: bool = False,
) -> Trajectory:
    """Ask, answer the tool calls, ask again, until a text answer or the budget runs out.

    ``until_activated``: stop at the first activation (a trigger eval asks only whether
    a skill loads, as skill-creator's harness does); the trajectory has no answer then.
    """
    turns: list[Turn] = []
    steps: list[Step] = []
    replayed = 0
    for turn in range(1, budget + 1):
        response, error, kind = ask(replace(first, turns=tuple(turns)))
        if response is None:
            steps.append(Step(turn, StepKind.CALL_FAILED, detail=error or "no answer"))
            return Trajectory(tuple(steps), None, error or "no answer", kind, turn, replayed)
        replayed += response.cached
        if not response.tool_calls:
            if response.text.strip():
                steps.append(Step(turn, StepKind.ANSWER))
            else:
                steps.append(Step(turn, StepKind.EMPTY_ANSWER, detail="the final answer is empty"))
            return Trajectory(tuple(steps), response, turns=turn, replayed=replayed)
        turns.append(Turn(TurnRole.ASSISTANT, response.text, response.tool_calls))
        for call in response.tool_calls:
            result = catalog.execute(turn, call)
            steps.append(result.step)
            turns.append(
                Turn(
                    TurnRole.TOOL, result.text, call_id=call.id, name=call.name, error=result.error
                )
            )
        if until_activated and any(step.kind is StepKind.ACTIVATE for step in steps):
            return Trajectory(tuple(steps), None, turns=turn, replayed=replayed)
    reason = f"no final answer within {budget} model turns (the turn budget)"
    steps.append(Step(budget, StepKind.BUDGET, detail=reason))
    return Trajectory(tuple(steps), None, reason, ErrorKind.CALL_FAILED, budget, replayed)


@dataclass(eq=False)
class Catalogs:
    """The catalog of each suite: the skills under the root (or those named), and the
    suite's own, read once per run."""

    root: Path
    #: Narrows the catalog to these names (the suite's own skills are always in it).
    names: tuple[str, ...] = ()
    _found: list[Skill] | None = field(default=None, init=False)

    def found(self) -> list[Skill]:
        if self._found is None:
            skills = []
            for path in find_skills(self.root):
                try:
                    skills.append(load_skill(path))
                except FormatError:
                    continue  # an unreadable skill is reported where it is tested
            self._found = [s for s in skills if not self.names or s.name in self.names]
        return self._found

    def for_skills(self, own: Iterable[Skill]) -> Catalog:
        return Catalog.of([*own, *self.found()])
