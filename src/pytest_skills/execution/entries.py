"""One recorded answer as the cache stores it: a JSON text, written and read by one set of rules.

The writer (:func:`encode`) checks what it is about to store with the reader's own
:func:`decode`, after :func:`normalised` has turned whatever a backend returned into
values the reader accepts, so an answer recorded live always replays: a negative,
fractional or NaN token count, a model id that is not a string or a list where a text
belongs is normalised, and an entry over :data:`MAX_ENTRY_BYTES` is refused with the
reason rather than written to be refused by every replay.

The reader trusts nothing: a committed cache comes from whoever can open a pull
request. Every value is checked where it enters, with the bounds below, so one odd
entry fails the items that need it (as an unreadable entry) and never the session.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pytest_skills.errors import SkillsError
from pytest_skills.models import Response, Usage
from pytest_skills.models.requests import tool_calls_from_json

#: The largest entry, in bytes, the writer stores and the reader reads (inline or from a
#: value file). Entries are ASCII JSON (``ensure_ascii``), so characters count as bytes.
MAX_ENTRY_BYTES = 64 * 2**20
#: A token count beyond this is not one a provider reported: the JSON report, statistics
#: and the terminal table must never meet a 400-digit integer.
MAX_TOKENS = 10**12
#: A latency beyond a week is not one a call had; sums over many answers stay finite.
MAX_LATENCY_S = 7 * 86400.0
#: Keys of ``extra`` that pytest-skills reads, each a text when present.
TEXT_EXTRAS = ("adapted", "gguf_file", "gguf_sha256", "llama_cpp_version", "prompt_format")

_USAGE_FIELDS = tuple(field.name for field in dataclasses.fields(Usage))
_OPTIONAL_TEXTS = ("stop_reason", "reported_model", "recorded_at", "reasoning")
#: Read once per entry: interned, thousands of answers share a few of each.
_INTERNED = ("stop_reason", "reported_model", "recorded_at")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SCALARS = (str, int, float, bool, type(None))
#: Most answers have no extra facts: they share one empty, read-only mapping.
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class EntryRefusedError(SkillsError, ValueError):
    """An answer the cache does not store; ``str()`` is the one-line warning."""


@dataclass(frozen=True)
class Entry:
    key: str
    label: str
    fields: Mapping[str, Any]
    response: Response
    #: The arm that recorded it (``skill``, ``baseline``, ...); "" in entries recorded
    #: before arms were kept, and never part of the key: any arm may replay the answer.
    arm: str = ""


# --- writing -------------------------------------------------------------------------


def normalised(response: Response) -> Response:
    """``response`` with every value an entry holds in the form the reader accepts.

    Token counts become whole numbers from 0 to :data:`MAX_TOKENS` (a fraction is
    rounded; a negative, NaN or absurd count is unknown: 0), latency a number of
    seconds from 0 to :data:`MAX_LATENCY_S`, optional texts strings (a model id of
    123 is ``"123"``), and lone UTF-16 surrogates (half an emoji) U+FFFD, which every
    report can write. Applied to live answers before they are graded, so a replay
    shows the same figures as the live run.
    """
    usage = Usage(**{name: _count(getattr(response.usage, name, 0)) for name in _USAGE_FIELDS})
    texts: dict[str, Any] = {
        name: _optional_text(getattr(response, name)) for name in _OPTIONAL_TEXTS
    }
    fixed = dataclasses.replace(
        response,
        text=clean_text(response.text if isinstance(response.text, str) else str(response.text)),
        usage=usage,
        latency_s=_seconds(response.latency_s),
        extra=_extra(response.extra),
        **texts,
    )
    # Always the copy: an equal response can still hold 5.0 where the reader wants 5.
    return fixed


def encode(label: str, fields: Mapping[str, Any], response: Response, arm: str = "") -> str:
    """The entry's text; EntryRefusedError when the reader would refuse it.

    ``arm`` is written only when given: entries without one stay byte for byte as
    they were recorded before it existed."""
    data: dict[str, Any] = {"label": label, "fields": dict(fields), "response": response.to_json()}
    if arm:
        data["arm"] = arm
    try:
        payload = json.dumps(data, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise EntryRefusedError(f"not cached: the entry is not plain JSON ({error})") from None
    if len(payload) > MAX_ENTRY_BYTES:
        raise EntryRefusedError(
            f"not cached: the entry is {size(len(payload))}; the cache holds entries of up "
            f"to {size(MAX_ENTRY_BYTES)}, and a replay would refuse it"
        )
    try:
        decode("", payload)
    except ValueError as error:
        raise EntryRefusedError(f"not cached: a replay would refuse the entry: {error}") from None
    return payload


def _count(value: Any) -> int:
    if type(value) is int:
        return value if 0 <= value <= MAX_TOKENS else 0
    if type(value) is float and math.isfinite(value) and 0 <= value <= MAX_TOKENS:
        return round(value)
    return 0


def _seconds(value: Any) -> float:
    if type(value) not in (int, float) or not value >= 0:  # NaN compares false
        return 0.0
    if type(value) is float and math.isinf(value):
        return 0.0  # no measurement at all, unlike a long one
    return float(min(value, MAX_LATENCY_S))


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    return clean_text(value if isinstance(value, str) else str(value))


def _extra(extra: Any) -> dict[str, Any]:
    if not isinstance(extra, Mapping):
        return {}
    fixed: dict[str, Any] = {}
    for key, value in extra.items():
        name = clean_text(key if isinstance(key, str) else str(key))
        if name in TEXT_EXTRAS:
            fixed[name] = _optional_text(value)
        elif isinstance(value, str):
            fixed[name] = clean_text(value)
        elif isinstance(value, _SCALARS) and _plain_json(value):
            fixed[name] = value
        else:
            # A backend's own fact: kept if it is plain JSON, else as its text.
            fixed[name] = value if _plain_json(value) else clean_text(str(value))
    return fixed


def _plain_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def size(count: int) -> str:
    """A number of bytes as a message says it."""
    return f"{count / 2**20:.1f} MB" if count >= 2**20 else f"{count:,} bytes"


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD: encodable as UTF-8 everywhere."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


# --- reading -------------------------------------------------------------------------


class _NotANumberError(SkillsError, ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotANumberError(f"it holds {name}, which is not a JSON number")


def decode(key: str, text: str) -> Entry:
    """The entry ``text`` holds; ValueError says what makes it unreadable."""
    if len(text) > MAX_ENTRY_BYTES:
        raise ValueError(f"it is larger than {size(MAX_ENTRY_BYTES)}")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except _NotANumberError as error:
        raise ValueError(str(error)) from None
    except (ValueError, RecursionError):  # ValueError: also an integer of 4,300+ digits
        raise ValueError("it is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"it holds a JSON {type(data).__name__}, not an entry")
    label, fields, response = data.get("label", ""), data.get("fields"), data.get("response")
    if not isinstance(label, str) or not isinstance(fields, dict):
        raise ValueError("its 'label' or 'fields' is missing or of the wrong type")
    for name, value in fields.items():
        if not isinstance(value, _SCALARS):
            raise ValueError(f"its fields.{name} is a {type(value).__name__}, not a value")
    arm = data.get("arm", "")
    if not isinstance(arm, str):
        raise ValueError("its 'arm' is not a string")
    return Entry(key, label, fields, _response(response), clean_text(arm))


def _response(data: Any) -> Response:
    if not isinstance(data, dict):
        raise ValueError("it has no 'response' object")
    text = data.get("text")
    if not isinstance(text, str):
        raise ValueError("its answer ('text') is not a string")
    usage = data.get("usage", {})
    if not isinstance(usage, dict) or not set(usage) <= set(_USAGE_FIELDS):
        raise ValueError(f"its 'usage' is not an object of {', '.join(sorted(_USAGE_FIELDS))}")
    for name, count in usage.items():
        if type(count) is not int or not 0 <= count <= MAX_TOKENS:
            raise ValueError(f"its usage.{name} is not a whole number of tokens: {_shown(count)}")
    latency = data.get("latency_s", 0.0)
    # Compared, never converted: float(10**400) would raise, and NaN compares false.
    if type(latency) not in (int, float) or not 0 <= latency <= MAX_LATENCY_S:
        raise ValueError(f"its 'latency_s' is not a number of seconds: {_shown(latency)}")
    texts: dict[str, Any] = {}
    for name in _OPTIONAL_TEXTS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"its '{name}' is not a string")
        if value is not None:
            value = clean_text(value)
            texts[name] = sys.intern(value) if name in _INTERNED else value
        else:
            texts[name] = None
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise ValueError("its 'extra' is not an object")
    for name in TEXT_EXTRAS:
        value = extra.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"its extra.{name} is not a string")
        if isinstance(value, str):
            extra[name] = clean_text(value)
    return Response(
        text=clean_text(text),
        usage=Usage(**usage),
        latency_s=float(latency),
        cached=True,
        extra=extra if extra else _NO_EXTRA,
        # The turns of an agent (the on-demand arm): replayed as recorded, or refused.
        tool_calls=tool_calls_from_json(data.get("tool_calls")),
        **texts,
    )


def _shown(value: Any) -> str:
    """A refused value as the message shows it: a 400-digit number is not shown whole."""
    if type(value) is int and abs(value) > MAX_TOKENS:
        # Not str(): past 4,300 digits it raises.
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
