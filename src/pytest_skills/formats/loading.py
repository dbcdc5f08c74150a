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
* JSON's non-standard ``NaN`` and ``Infinity`` are refused.

YAML is composed here from libyaml's events (not by its recursive composer), so the
limits apply while reading, before any node is built past them. JSON line numbers
come from a scan of the JSON text itself, so any valid JSON gets them, escapes
included. Pure code: no pytest.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_skills.formats.data import FormatError, KeyPath

MAX_FILE_BYTES = 10 * 2**20
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000
MAX_ALIAS_CHARS = MAX_FILE_BYTES

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DataError(Exception):
    """Text that is not acceptable data; ``line`` (1-based) where known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


def read_data(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """The file's data and the line of every key path; FormatError says what is wrong."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FormatError(
                path,
                f"the file is {size / 2**20:.1f} MB; skill test files are limited to "
                f"{MAX_FILE_BYTES // 2**20} MB (put large inputs in context files)",
            )
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows add a BOM
    except (OSError, UnicodeDecodeError, ValueError) as error:
        # ValueError: a NUL in the path; OSError: missing, unreadable, a directory.
        raise FormatError(path, f"cannot read the file: {error}") from None
    try:
        return load_json(text) if path.suffix == ".json" else load_yaml(text)
    except DataError as error:
        raise FormatError(path, error.message, error.line) from None


# --- JSON ------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise DataError(f"invalid JSON: {name} is not a JSON value")


def load_json(text: str) -> tuple[Any, dict[KeyPath, int]]:
    lines = _json_lines(text)  # first: it bounds the depth before json.loads recurses
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise DataError(f"invalid JSON: {error.msg} (column {error.colno})", error.lineno) from None
    except (ValueError, RecursionError) as error:  # e.g. an integer of 5,000 digits
        raise DataError(f"invalid JSON: {error}") from None
    return data, lines


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


def load_yaml(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """The single document in ``text`` (None when empty) and its key lines."""
    loader = _Loader(text)
    try:
        root = _YamlComposer(loader).document()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        line = mark.line + 1 if mark else None
        if "nesting depth" in problem:  # libyaml's own limit, met while scanning ahead
            raise DataError(_too_deep(), line) from None
        raise DataError(f"invalid YAML: {problem}", line) from None
    except (ValueError, RecursionError) as error:  # e.g. an integer of 5,000 digits
        raise DataError(f"invalid YAML: {error}") from None
    finally:
        loader.dispose()
    return data, _yaml_lines(root)


@dataclass
class _Open:
    """A mapping or sequence being composed."""

    node: yaml.MappingNode | yaml.SequenceNode
    #: Nodes and characters it stands for, aliases expanded.
    nodes: int = 1
    chars: int = 0
    key: yaml.Node | None = None
    keys: dict[tuple[str, str], int] = field(default_factory=dict)


class _YamlComposer:
    """PyYAML's composer, without recursion and with the limits of this module."""

    def __init__(self, loader: Any):
        self.loader = loader
        self.anchors: dict[str, yaml.Node] = {}
        #: Expanded size (nodes, characters) of every finished anchored node.
        self.sizes: dict[int, tuple[int, int]] = {}
        self.alias_nodes = 0
        self.alias_chars = 0
        self.stack: list[_Open] = []
        #: ids of the nodes that carry an anchor.
        self.anchored: set[int] = set()

    def document(self) -> yaml.Node | None:
        loader = self.loader
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # DocumentStart
        root = self.node()
        loader.get_event()  # DocumentEnd
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.get_event()
            raise DataError(
                "the file holds a second YAML document (after '---'); keep one",
                event.start_mark.line + 1,
            )
        return root

    def node(self) -> yaml.Node:
        """Compose one node (with everything inside it) from the events."""
        loader = self.loader
        while True:
            event = loader.get_event()
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                finished = self.stack.pop()
                finished.node.end_mark = event.end_mark
                self._remember(finished.node, finished.nodes, finished.chars)
                done, nodes, chars = finished.node, finished.nodes, finished.chars
            elif isinstance(event, yaml.AliasEvent):
                done = self._alias(event)
                nodes, chars = self.sizes[id(done)]
                self.alias_nodes += nodes
                self.alias_chars += chars
                if self.alias_nodes > MAX_ALIAS_NODES or self.alias_chars > MAX_ALIAS_CHARS:
                    raise DataError(
                        f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} values or "
                        f"{MAX_ALIAS_CHARS // 2**20} MB of text; write the data out instead "
                        "of repeating anchors",
                        event.start_mark.line + 1,
                    )
            else:
                anchor = event.anchor
                if anchor is not None and anchor in self.anchors:
                    first = self.anchors[anchor].start_mark.line + 1
                    raise DataError(
                        f"anchor &{anchor} is defined twice (first on line {first})",
                        event.start_mark.line + 1,
                    )
                if isinstance(event, yaml.ScalarEvent):
                    done = self._scalar(event)
                    nodes, chars = 1, len(event.value)
                    self._remember(done, nodes, chars)
                else:
                    self._open(event)
                    continue
            if not self.stack:
                return done
            self._attach(self.stack[-1], done, nodes, chars)

    def _scalar(self, event: yaml.ScalarEvent) -> yaml.ScalarNode:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(
            tag, event.value, event.start_mark, event.end_mark, style=event.style
        )
        self._anchor(event.anchor, node)
        return node

    def _open(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise DataError(_too_deep(), event.start_mark.line + 1)
        mapping = isinstance(event, yaml.MappingStartEvent)
        kind = yaml.MappingNode if mapping else yaml.SequenceNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        self._anchor(event.anchor, node)
        self.stack.append(_Open(node))

    def _anchor(self, anchor: str | None, node: yaml.Node) -> None:
        if anchor is not None:
            self.anchors[anchor] = node
            self.anchored.add(id(node))

    def _alias(self, event: yaml.AliasEvent) -> yaml.Node:
        target = self.anchors.get(event.anchor)
        if target is None:
            raise DataError(
                f"alias *{event.anchor} has no anchor &{event.anchor} before it",
                event.start_mark.line + 1,
            )
        if id(target) not in self.sizes:
            # Still open: the alias sits inside its own anchor (a recursive structure).
            raise DataError(
                f"alias *{event.anchor} refers to a value that contains it",
                event.start_mark.line + 1,
            )
        return target

    def _remember(self, node: yaml.Node, nodes: int, chars: int) -> None:
        if id(node) in self.anchored:
            self.sizes[id(node)] = (nodes, chars)

    def _attach(self, parent: _Open, child: yaml.Node, nodes: int, chars: int) -> None:
        parent.nodes += nodes
        parent.chars += chars
        if isinstance(parent.node, yaml.SequenceNode):
            parent.node.value.append(child)
        elif parent.key is None:
            parent.key = child
        else:
            key = parent.key
            parent.key = None
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                seen = (key.tag, key.value)
                if seen in parent.keys:
                    raise DataError(
                        f"duplicate key {key.value!r} (first on line {parent.keys[seen]})",
                        key.start_mark.line + 1,
                    )
                parent.keys[seen] = key.start_mark.line + 1
            parent.node.value.append((key, child))


def _yaml_lines(root: yaml.Node | None) -> dict[KeyPath, int]:
    """Map key paths like ("cases", 0, "expect") to 1-based lines.

    Aliased nodes are walked once per alias; the composer's budget bounds the walk.
    """
    lines: dict[KeyPath, int] = {}
    pending: list[tuple[yaml.Node, KeyPath]] = [] if root is None else [(root, ())]
    while pending:
        node, path = pending.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                pending.append((value, child))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, (*path, index)) for index, item in enumerate(node.value))
    return lines


def _too_deep() -> str:
    return f"mappings and lists are nested more than {MAX_DEPTH} levels deep"
