"""JSON and YAML into plain data with the line of every key, within fixed limits.

A test file is input from anywhere (a pull request, a downloaded skill), so reading one
must end quickly with data or one clear error, whatever it holds:

* at most :data:`MAX_FILE_BYTES` bytes;
* mappings and lists nested at most :data:`MAX_DEPTH` levels;
* YAML aliases may repeat at most :data:`MAX_ALIAS_NODES` nodes and
  :data:`MAX_ALIAS_CHARS` characters in total, so a few hundred bytes of nested
  anchors (the "billion laughs") cannot stand for gigabytes; an alias to a node
  that contains it is refused;
* duplicate keys in a mapping are errors (the second would silently win);
* only plain YAML types are built (``SafeConstructor``), never objects;
* JSON's non-standard ``NaN`` and ``Infinity`` are refused, and so is an integer too
  large to be a float (over 308 digits), with its line;
* numbers keep the text they were written as (:class:`SourceInt`,
  :class:`SourceFloat`): a check that reads one as text reads ``3.10``, ``010`` and
  ``1:30``, not ``3.1``, ``8`` and ``90``;
* only regular files are read (a FIFO is refused, not waited on).

YAML is composed by libyaml (aliases stay shared nodes there) and walked once,
iteratively, to check the limits and note the lines before any data is built. JSON
line numbers come from a scan of the JSON text itself, so any valid JSON gets them,
escapes included. Pure code: no pytest.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import pytest_skills.gcpause as gcpause
from pytest_skills.errors import SkillsError
from pytest_skills.formats.data import FormatError, KeyPath
from pytest_skills.formats.files import open_regular

MAX_FILE_BYTES = 10 * 2**20
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000
MAX_ALIAS_CHARS = MAX_FILE_BYTES


class DataError(SkillsError):
    """Text that is not acceptable data; ``line`` (1-based) where known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


def read_data(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """The file's data and the line of every key path; FormatError says what is wrong."""
    try:
        with open_regular(path, "skill test file") as (handle, info):
            if info.st_size > MAX_FILE_BYTES:
                raise FormatError(path, _too_big(info.st_size))
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # it grew since it was measured
            raise FormatError(path, _too_big(len(data)))
        text = data.decode("utf-8-sig")  # editors on Windows add a BOM
    except (OSError, UnicodeDecodeError, ValueError) as error:
        # ValueError: a NUL in the path, a FIFO; OSError: missing, unreadable, a directory.
        raise FormatError(path, f"cannot read the file: {error}") from None
    try:
        with gcpause.paused():
            return load_json(text) if path.suffix == ".json" else load_yaml(text)
    except DataError as error:
        raise FormatError(path, error.message, error.line) from None


def _too_big(size: int) -> str:
    return (
        f"the file is {size / 2**20:.1f} MB; skill test files are limited to "
        f"{MAX_FILE_BYTES // 2**20} MB (put large inputs in context files)"
    )


# --- numbers that remember how they were written -----------------------------------------


class SourceInt(int):
    """An integer as written in the file: ``str()`` is its text (``010``, ``1:30``,
    ``1_000``), everything else is the number. String checks read text, so a number
    written in one means what it says."""

    source: str

    def __new__(cls, value: int, source: str) -> SourceInt:
        made = super().__new__(cls, value)
        made.source = source
        return made

    def __str__(self) -> str:
        return self.source

    def __reduce__(self) -> tuple[Any, ...]:
        return (SourceInt, (int(self), self.source))


class SourceFloat(float):
    """A float as written in the file: ``str()`` is its text (``3.10``), everything
    else is the number."""

    source: str

    def __new__(cls, value: float, source: str) -> SourceFloat:
        made = super().__new__(cls, value)
        made.source = source
        return made

    def __str__(self) -> str:
        return self.source

    def __reduce__(self) -> tuple[Any, ...]:
        return (SourceFloat, (float(self), self.source))


class _TooLargeError(SkillsError):
    def __init__(self, source: str):
        super().__init__(source)
        self.source = source


def _sized(value: int, source: str) -> SourceInt:
    """``value``, unless it is too large for any use: a float cannot hold it, so every
    comparison with a limit or conversion to seconds would fail."""
    try:
        float(value)
    except OverflowError:
        raise _TooLargeError(source) from None
    return SourceInt(value, source)


def _too_large(source: str) -> str:
    digits = sum(char.isdigit() for char in source)
    return f"a number of {digits:,} digits is larger than any value a skill test file can use"


# --- JSON ------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise DataError(f"invalid JSON: {name} is not a JSON value")


def load_json(text: str) -> tuple[Any, dict[KeyPath, int]]:
    lines = _json_lines(text)  # first: it bounds the depth before json.loads recurses
    try:
        data = json.loads(
            text,
            parse_constant=_no_constant,
            parse_int=lambda source: _sized(int(source), source),
            parse_float=lambda source: SourceFloat(float(source), source),
        )
    except _TooLargeError as error:
        raise DataError(_too_large(error.source), _json_number_line(text, error.source)) from None
    except json.JSONDecodeError as error:
        raise DataError(f"invalid JSON: {error.msg} (column {error.colno})", error.lineno) from None
    except (ValueError, RecursionError) as error:  # e.g. an integer of 5,000 digits
        raise DataError(f"invalid JSON: {error}") from None
    return data, lines


def _json_number_line(text: str, number: str) -> int | None:
    """The line of the first ``number`` outside a string."""
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|-?[0-9]+', text):
        if match.group().lstrip("-") == number.lstrip("-"):
            return text.count("\n", 0, match.start()) + 1
    return None


#: Strings and the structural characters; everything else (numbers, literals,
#: whitespace) lies between them and needs no attention.
_NON_SPACE = re.compile(r"\S")
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]', re.DOTALL)


@dataclass
class _JsonLevel:
    is_object: bool
    path: KeyPath
    index: int = 0
    expecting_key: bool = True
    keys: dict[str, int] = field(default_factory=dict)


def _json_lines(text: str) -> dict[KeyPath, int]:
    """Map key paths to lines by scanning the text; depth and duplicate keys checked.

    Invalid JSON is left for ``json.loads`` to describe: the scan stops quietly when
    the text stops making sense.
    """
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(offset: int) -> int:
        return bisect_right(newlines, offset) + 1

    lines: dict[KeyPath, int] = {}
    stack: list[_JsonLevel] = []
    value_path: KeyPath = ()

    def element_line(after: int) -> None:
        # A list element may be a number or a literal, which the tokens skip.
        start = _NON_SPACE.search(text, after)
        if start is not None and start.group() != "]":
            lines[value_path] = line_at(start.start())

    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        top = stack[-1] if stack else None
        if token in "{[":
            if len(stack) >= MAX_DEPTH:
                raise DataError(_too_deep(), line_at(match.start()))
            path = value_path if top is not None else ()
            lines.setdefault(path, line_at(match.start()))
            stack.append(_JsonLevel(token == "{", path))
            if token == "[":
                value_path = (*path, 0)
                element_line(match.end())
        elif token in "}]":
            if not stack:
                return lines
            stack.pop()
        elif token == ",":
            if top is None:
                return lines
            if top.is_object:
                top.expecting_key = True
            else:
                top.index += 1
                value_path = (*top.path, top.index)
                element_line(match.end())
        elif token == ":":
            if top is not None:
                top.expecting_key = False
        elif top is not None and top.is_object and top.expecting_key:
            try:
                key = json.loads(token)
            except ValueError:
                return lines
            line = line_at(match.start())
            if key in top.keys:
                raise DataError(f"duplicate key {key!r} (first on line {top.keys[key]})", line)
            top.keys[key] = line
            value_path = (*top.path, key)
            lines[value_path] = line
    return lines


# --- YAML ------------------------------------------------------------------------------


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """The safe loader, with numbers that keep their text (constructors of its own)."""


def _yaml_int(loader: Any, node: yaml.ScalarNode) -> SourceInt:
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    try:
        return _sized(value, node.value)
    except _TooLargeError:
        raise DataError(_too_large(node.value), node.start_mark.line + 1) from None


def _yaml_float(loader: Any, node: yaml.ScalarNode) -> SourceFloat:
    value = yaml.constructor.SafeConstructor.construct_yaml_float(loader, node)
    return SourceFloat(value, node.value)


_Loader.add_constructor("tag:yaml.org,2002:int", _yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _yaml_float)


def load_yaml(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """The single document in ``text`` (None when empty) and its key lines."""
    loader = _Loader(text)
    try:
        # libyaml composes (fast, in C); aliases are shared nodes there, so nothing has
        # been expanded yet. The walk checks the limits before anything is built.
        root = loader.get_single_node()
        lines = _checked_lines(root)
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as error:
        raise DataError(*_yaml_problem(error)) from None
    except (ValueError, RecursionError) as error:  # e.g. an integer of 5,000 digits
        raise DataError(f"invalid YAML: {error}") from None
    finally:
        loader.dispose()
    return data, lines


def _yaml_problem(error: yaml.YAMLError) -> tuple[str, int | None]:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark else None
    problem = getattr(error, "problem", None) or str(error)
    if "nesting depth" in problem:  # libyaml's own limit, met while scanning ahead
        return _too_deep(), line
    if problem == "but found another document":
        return "the file holds a second YAML document (after '---'); keep one", line
    if problem == "second occurrence":  # context: "found duplicate anchor 'a'; first ..."
        return "an anchor is defined twice; each anchor name may be defined once", line
    return f"invalid YAML: {problem}", line


#: A node being walked: (node, key path, depth, the entry of its parent).
_Walked = tuple[yaml.Node, KeyPath, int, Any]


def _checked_lines(root: yaml.Node | None) -> dict[KeyPath, int]:
    """Map key paths like ("cases", 0, "expect") to 1-based lines, checking the limits.

    Iterative, so depth is checked before it can exhaust the stack. A node reached a
    second time was reached through an alias: what it stands for counts against the
    alias budget, and reaching it from inside itself is a recursive structure.
    """
    lines: dict[KeyPath, int] = {}
    if root is None:
        return lines
    seen: set[int] = set()
    alias_nodes = alias_chars = 0
    pending: list[_Walked] = [(root, (), 1, None)]
    while pending:
        entry = pending.pop()
        node, path, depth, parent = entry
        line = node.start_mark.line + 1
        lines.setdefault(path, line)
        again = id(node) in seen
        if again:
            if not isinstance(node, yaml.ScalarNode) and _contains(node, parent):
                raise DataError("an alias refers to a value that contains it", line)
            alias_nodes += 1 + (len(node.value) if isinstance(node, yaml.MappingNode) else 0)
            alias_chars += len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            if alias_nodes > MAX_ALIAS_NODES or alias_chars > MAX_ALIAS_CHARS:
                raise DataError(
                    f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} values or "
                    f"{MAX_ALIAS_CHARS // 2**20} MB of text; write the data out instead "
                    "of repeating anchors",
                    line,
                )
        else:
            seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            continue
        if depth > MAX_DEPTH:
            raise DataError(_too_deep(), line)
        if isinstance(node, yaml.SequenceNode):
            pending.extend(
                (item, (*path, index), depth + 1, entry) for index, item in enumerate(node.value)
            )
            continue
        keys: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            child = (*path, str(key.value))
            key_line = key.start_mark.line + 1
            lines[child] = key_line
            if not again and isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                name = (key.tag, key.value)
                if name in keys:
                    raise DataError(
                        f"duplicate key {key.value!r} (first on line {keys[name]})", key_line
                    )
                keys[name] = key_line
            pending.append((value, child, depth + 1, entry))
    return lines


_MERGE = "tag:yaml.org,2002:merge"


def _contains(node: yaml.Node, parent: Any) -> bool:
    """Whether ``node`` is among the ancestors recorded in the chain of ``parent``."""
    while parent is not None:
        if parent[0] is node:
            return True
        parent = parent[3]
    return False


def _too_deep() -> str:
    return f"mappings and lists are nested more than {MAX_DEPTH} levels deep"
