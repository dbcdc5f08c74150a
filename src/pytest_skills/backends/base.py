"""What every backend shares: the protocol, its options, its errors, the SDK error mapping."""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_skills.backends.transport import ResponseRefusedError, shown_url
from pytest_skills.errors import SkillsError
from pytest_skills.models import Request, Response


@dataclass(frozen=True)
class BackendOptions:
    """The run's settings that backends read."""

    #: Timeout of one call to a remote API, in seconds.
    timeout: float = 120.0
    #: Directories searched for GGUF files named by file name.
    gguf_dirs: tuple[Path, ...] = ()
    #: Where a backend tells the user of slow one-time work (assembling a model file).
    announce: Callable[[str], None] | None = field(default=None, compare=False)
    #: Whether an ``hf:`` model missing from the Hugging Face cache may be downloaded.
    hf_download: bool = False


class BackendError(SkillsError):
    """A call that failed. ``retryable`` errors (429, 529, 5xx, timeouts) are retried.

    ``model_unavailable`` errors (no key, no model file, no llama-cpp-python) would be
    the same for every call of the model: the runner stops calling it and the summary
    reports the problem once.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        model_unavailable: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.model_unavailable = model_unavailable


class MissingCredentialsError(BackendError):
    """No API key: the message names the environment variable to set."""

    def __init__(self, variable: str, provider: str):
        super().__init__(
            f"{provider} needs an API key: {variable} is not set\n"
            f"Set the environment variable {variable}, or replay recorded answers with "
            "--skill-cache=replay",
            model_unavailable=True,
        )
        self.variable = variable


@runtime_checkable
class Backend(Protocol):
    """What the runner needs of a backend.

    ``complete`` is called from worker threads; ``exclusive`` backends (a local model
    in this process) get one call at a time, in the order the runner planned. A request
    with ``tools`` and ``turns`` is one turn of an agent loop: the answer's
    ``tool_calls`` are what the model called (see the ``pytest_skills_make_backend``
    hook's documentation).
    """

    exclusive: bool

    def complete(self, request: Request) -> Response: ...


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def split_reasoning(text: str) -> tuple[str, str | None]:
    """The final answer and the reasoning of a model that thinks aloud in ``<think>`` tags.

    Reasoning models served by llama.cpp or an OpenAI-compatible server (Qwen3,
    DeepSeek-R1, GLM-4.x) write ``<think>...</think>`` before their answer. Three forms:
    closed blocks; a lone ``</think>`` when the chat template opened the block in the
    prompt; and an unclosed ``<think>`` when ``max_tokens`` cut the reasoning short, in
    which case there is no answer. Text without the tags comes back unchanged.
    """
    if THINK_OPEN not in text and THINK_CLOSE not in text:
        return text, None
    reasoning: list[str] = []
    answer: list[str] = []
    close, opening = text.find(THINK_CLOSE), text.find(THINK_OPEN)
    if close != -1 and (opening == -1 or close < opening):
        text = THINK_OPEN + text  # the chat template opened the block in the prompt
    rest = text
    while True:
        before, opened, after = rest.partition(THINK_OPEN)
        answer.append(before)
        if not opened:
            break
        thought, closed, rest = after.partition(THINK_CLOSE)
        reasoning.append(thought)
        if not closed:  # cut off while reasoning: no answer after it
            break
    shown = "\n\n".join(part.strip() for part in reasoning if part.strip())
    return "".join(answer).strip(), shown or None


def recorded_now() -> str:
    """The time an answer is recorded, as stored in its cache entry."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- provider-neutral HTTP helpers: both SDKs expose the same headers and errors --------


def sdk_error(
    provider: str,
    sdk: Any,
    error: Exception,
    timeout: float,
    status_detail: Callable[[Any], str],
) -> BackendError:
    """Translate an ``anthropic``/``openai`` SDK exception into one line the runner can
    show and act on; ``status_detail`` reads the provider's message from a status error."""
    if isinstance(error, sdk.APIStatusError):
        status = error.status_code
        headers = error.response.headers
        return BackendError(
            f"{provider} {status}: {status_detail(error)}",
            retryable=is_retryable(status, headers),
            retry_after=retry_after(headers),
        )
    if isinstance(error, sdk.APITimeoutError):  # before its base class
        return BackendError(
            f"{provider}: no answer within {timeout:g}s from {shown_url(str(error.request.url))} "
            "(--skill-timeout bounds each call, from connecting to the last byte)",
            retryable=True,
        )
    if isinstance(error, sdk.APIConnectionError):
        cause = error.__cause__ or error.message
        if isinstance(cause, ResponseRefusedError):
            return BackendError(f"{provider}: {cause}")
        url = str(error.request.url)
        return BackendError(
            f"{provider}: cannot reach {shown_url(url)}: {_without(str(cause), url)}",
            retryable=True,
        )
    return BackendError(f"{provider}: {error}")


def _without(text: str, url: str) -> str:
    """``text`` with ``url`` (as given, credentials and all) shown without credentials."""
    return text.replace(url, shown_url(url)) if url else text


def is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    """Rate limits, overload (529), server errors and request timeouts are worth a retry."""
    # Both providers may say so explicitly; the SDKs obey this header, and so do we.
    verdict = headers.get("x-should-retry")
    if verdict in ("true", "false"):
        return verdict == "true"
    return status in (408, 429) or status >= 500


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait as the server asks: ``retry-after-ms``, or ``retry-after`` as
    (possibly fractional) seconds or an HTTP date. ``None`` when it does not say."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) * scale, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - time.time(), 0.0)
    return None


def body_excerpt(body: object) -> str | None:
    """A short excerpt of an error body that has no provider message (a proxy's page)."""
    if body is None:
        return None
    if isinstance(body, bytes):
        text = body.decode(errors="replace")
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, default=str)
    text = " ".join(text.split())
    return text[:200] or None


# --- provider bodies of the wrong shape ------------------------------------------------

#: Token counts above this are no provider's: refused rather than summed into reports.
MAX_TOKEN_COUNT = 2**53


class MalformedBodyError(SkillsError):
    """A provider response of the wrong shape; the message names what was wrong."""


def shape(value: object) -> str:
    """What ``value`` is, in a few words, for a message about a malformed body."""
    if value is None:
        return "missing (or null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        excerpt = body_excerpt(value) or ""
        return f"the string {excerpt[:60]!r}" + ("…" if len(excerpt) > 60 else "")
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def field_text(obj: object, name: str, where: str) -> str:
    """The string field ``name`` of ``obj`` (at ``where`` in the body)."""
    value = getattr(obj, name, None)
    if not isinstance(value, str):
        raise MalformedBodyError(f"'{where}.{name}' is {shape(value)}, not a string")
    return value


def optional_text(obj: object, name: str) -> str | None:
    """An informative string field (a stop reason, the model's name): None if not one."""
    value = getattr(obj, name, None)
    return value if isinstance(value, str) else None


_NO_DEFAULT: Any = object()


def token_count(obj: object, name: str, where: str, default: int = _NO_DEFAULT) -> int:
    """The token count ``name`` of ``obj``: a whole number from 0 to MAX_TOKEN_COUNT.

    An odd number (negative, fractional, not finite) is no reason to lose the answer: it
    is read as the cache would store it (0, or rounded). Anything else is malformed."""
    value = getattr(obj, name, None)
    if value is None and default is not _NO_DEFAULT:
        return int(default)
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            return 0
        value = round(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_COUNT:
        shown = f"the number {value}" if isinstance(value, int) and value < 10**20 else shape(value)
        raise MalformedBodyError(f"'{where}.{name}' is {shown}, not a token count")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def sendable(text: str) -> str:
    """``text`` as it can be sent: a lone UTF-16 surrogate (half an emoji, from a JSON
    ``\\u`` escape in a test file) has no UTF-8 form and is replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)
