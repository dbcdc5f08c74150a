"""A response cache as text a reviewer can read: ``--skill-cache-dump`` and git's textconv.

``cache.db`` is a binary file: a pull request that re-records answers shows nothing
in ``git diff``. :func:`dump` turns it into a stable text form, one block per entry,
sorted by skill, case, model, arm and trial (never by when an entry was written), with
the answer (and reasoning, tool calls) as indented text, multi-line answers kept
multi-line. What changes on every recording of the same answer (when, how fast) sits
on one line of its own, so a diff of two recordings shows the answers that changed.

The file is read as a replay reads it (``store.py``): a cache whose schema is not
diskcache's own is refused whole, with one line, and nothing of it is listed (a replay
would read none of it either, so its answers are not what CI uses). An entry a replay
refuses is listed with the reason. git hands textconv a temporary copy of the blob,
named anything: a file is read from a private copy named ``cache.db``, and answers
large enough to live in value files beside it are said to be missing from the copy.

Everything shown is untrusted text: control characters (terminal escapes) and
bidirectional overrides are shown escaped, and the values of secret variables in the
environment are redacted. ``python -m pytest_skills.execution.dump PATH`` runs it
without pytest's start-up (the textconv command); no pytest import here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from diskcache.core import MODE_TEXT

from pytest_skills.errors import SkillsError
from pytest_skills.execution.entries import Entry, decode
from pytest_skills.execution.schema import DB_NAME, UntrustedCacheError
from pytest_skills.execution.secrets import redact, secret_values
from pytest_skills.execution.store import StoreReader, UnreadableValueError, value_text

#: Exit status of a dump that could not list the cache (absent, not a cache, untrusted).
NOT_A_CACHE = 2
#: Key fields the entry's heading already shows.
_HEADED = ("provider", "model", "trial")
#: Characters a terminal or an editor would act on instead of showing: C0 and C1
#: controls (escape sequences), line and paragraph separators, bidirectional overrides.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: Prefix of each line of a multi-line text: an answer's blank line stays visible, and
#: no answer line can pass for the heading of another entry.
_BLOCK = "  |"


class DumpError(SkillsError):
    """The path cannot be listed as a cache; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class Unreadable:
    key: str
    reason: str


def dump(path: Path, secrets: Mapping[str, str] | None = None) -> list[str]:
    """The text form of the cache at ``path`` (its directory, or a ``cache.db`` file,
    perhaps a copy with another name), as lines; DumpError says why there is none."""
    secrets = secret_values() if secrets is None else secrets
    readable: list[Entry] = []
    unreadable: list[Unreadable] = []
    #: Entries whose answers are in value files a bare copy of cache.db lacks.
    detached: list[Unreadable] = []
    with _cache_directory(path) as (directory, bare):
        reader = StoreReader(directory, read_only=True)
        try:
            for key, row in reader.rows():
                if bare and row[0] == MODE_TEXT:
                    detached.append(Unreadable(key, _detached(row[1])))
                    continue
                try:
                    readable.append(decode(key, value_text(directory, row)))
                except (UnreadableValueError, ValueError) as error:
                    unreadable.append(Unreadable(key, str(error)))
        except UntrustedCacheError as error:
            raise DumpError(
                f"{path} is not a response cache pytest-skills wrote ({error}); nothing of "
                "it is listed, and a replay would read none of it"
            ) from None
        except (sqlite3.Error, OSError) as error:
            raise DumpError(f"{path} cannot be read as a response cache: {error}") from None
        finally:
            reader.close()
    readable.sort(key=_order)
    unreadable.sort(key=lambda item: item.key)
    detached.sort(key=lambda item: item.key)
    count = f"{len(readable)} entr{'y' if len(readable) == 1 else 'ies'}"
    if detached:
        count += f", {len(detached)} in value files this copy lacks"
    if unreadable:
        count += f", {len(unreadable)} unreadable"
    lines = [f"# pytest-skills response cache: {count}"]
    for entry in readable:
        lines += ["", *_entry_lines(entry)]
    for item in detached:
        lines += [
            "",
            f"=== entry {one_line(item.key[:12])}: not in this copy",
            one_line(item.reason),
        ]
    for item in unreadable:
        lines += [
            "",
            f"=== unreadable entry {one_line(item.key[:12])}",
            f"refused: {one_line(item.reason)}",
        ]
    return [redact(line, secrets) for line in lines] if secrets else lines


@contextmanager
def _cache_directory(path: Path) -> Iterator[tuple[Path, bool]]:
    """The directory to read, and whether it is a private copy of a bare file."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise DumpError(
            f"{path}: {error.strerror}; give a response cache directory or its {DB_NAME}"
        ) from None
    if stat.S_ISDIR(mode):
        if not os.path.lexists(path / DB_NAME):
            raise DumpError(
                f"{path} holds no {DB_NAME}: it is not a response cache (record one first, "
                "or name the directory --skill-cache-dir names)"
            )
        yield path, False
        return
    if not stat.S_ISREG(mode):
        raise DumpError(f"{path} is not a regular file nor a directory: no cache to list")
    if path.name == DB_NAME:
        yield path.parent, False  # the cache's own file: its value files are beside it
        return
    # git's temporary copy of a blob: read from a copy named as the reader expects.
    private = Path(tempfile.mkdtemp(prefix="pytest-skills-dump-"))
    try:
        shutil.copyfile(path, private / DB_NAME)
        yield private, True
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _detached(filename: Any) -> str:
    return (
        f"its answer is stored in the value file {one_line(str(filename))} beside {DB_NAME} "
        f"in the cache directory, which a copy of {DB_NAME} alone (as git hands textconv) "
        "does not hold; dump the cache directory to read it"
    )


def _trial(value: Any) -> tuple[int, int, str]:
    # Untrusted: a trial that is not a whole number still sorts, after the numbers.
    if type(value) is int:
        return (0, value, "")
    return (1, 0, repr(value))


def _parts(entry: Entry) -> tuple[str, str, str]:
    skill, _, case = entry.label.partition("::")
    fields = entry.fields
    model = f"{fields.get('provider')}:{fields.get('model')}"
    return skill, case, model


def _order(entry: Entry) -> tuple[Any, ...]:
    skill, case, model = _parts(entry)
    return (skill, case, model, entry.arm, _trial(entry.fields.get("trial")), entry.key)


def _entry_lines(entry: Entry) -> list[str]:
    skill, case, model = _parts(entry)
    response = entry.response
    heading = f"=== {skill} :: {case}" if case else f"=== {skill or '(no label)'}"
    lines = [
        one_line(heading),
        f"model: {one_line(model)} · arm: {one_line(entry.arm or '(not recorded)')} · trial: "
        f"{_value(entry.fields.get('trial'))}",
        f"key: {one_line(entry.key[:12])} · {_fields(entry.fields)}",
        "usage: "
        + " · ".join(
            f"{name.removesuffix('_tokens').replace('_', ' ')} {count}"
            for name, count in _usage(entry)
        ),
        f"stop: {one_line(response.stop_reason or '(not given)')} · reported model: "
        f"{one_line(response.reported_model or '(not given)')}",
    ]
    if response.extra:
        lines.append(
            "extra: "
            + " · ".join(f"{one_line(k)}={_value(v)}" for k, v in sorted(response.extra.items()))
        )
    lines += ["answer:", *_block(response.text)]
    if response.reasoning is not None:
        lines += ["reasoning:", *_block(response.reasoning)]
    if response.tool_calls:
        lines.append("tool calls:")
        for call in response.tool_calls:
            lines += _block(f"{call.name} {call.arguments}  (id {call.id})")
    # Last, and on one line: re-recording the same answer changes only this line.
    lines.append(
        f"recorded: {one_line(response.recorded_at or '(not given)')} · "
        f"latency {response.latency_s:.2f}s"
    )
    return lines


def _usage(entry: Entry) -> list[tuple[str, int]]:
    return list(entry.response.usage.as_dict().items())


def _fields(fields: Mapping[str, Any]) -> str:
    shown = [
        f"{name}={_value(value)}"
        for name, value in sorted(fields.items())
        if name not in _HEADED and value is not None
    ]
    return "fields: " + (" ".join(shown) if shown else "(none)")


def _value(value: Any) -> str:
    if isinstance(value, str):
        return one_line(value)
    return one_line(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def _visible(text: str) -> str:
    def escaped(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _INVISIBLE.sub(escaped, text)


def one_line(text: str) -> str:
    """``text`` on one line, with nothing a terminal would act on."""
    return _visible(text.replace("\n", "\\n"))


def _block(text: str) -> list[str]:
    return [f"{_BLOCK} {_visible(line)}" if line else _BLOCK for line in text.split("\n")]


def write(lines: Sequence[str], stream: TextIO) -> None:
    """``lines`` to ``stream`` as UTF-8 whatever the locale (git reads textconv output
    as bytes; a C locale must not make a non-ASCII answer fail the dump)."""
    data = "".join(f"{line}\n" for line in lines)
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(data)
    else:
        stream.flush()
        buffer.write(data.encode("utf-8", "backslashreplace"))
        buffer.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_skills.execution.dump PATH``: the dump of one cache, or why not."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print(
            "usage: python -m pytest_skills.execution.dump PATH (a response cache directory "
            f"or a {DB_NAME} file)",
            file=sys.stderr,
        )
        return NOT_A_CACHE
    try:
        lines = dump(Path(args[0]))
    except DumpError as error:
        print(f"pytest-skills: {error}", file=sys.stderr)
        return NOT_A_CACHE
    write(lines, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
