"""Model specs: ``[provider:]name[@base_url]``, ``hf:`` references, and the alias table.

Parsed once at configure time; nothing here imports pytest or an SDK.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qsl, urlsplit

from pytest_skills.errors import SkillsError

#: When the model ids below were last checked against what the providers list (the
#: ``openai`` 3.57 and ``anthropic`` 2.13 SDKs' model lists, and the Hugging Face repo).
ALIASES_CHECKED = "2026-11-25"

#: Built-in aliases, the newest model of each family on the date above; ini
#: ``skill_model_aliases`` extends or overrides them.
DEFAULT_ALIASES: Mapping[str, str] = {
    # Anthropic, one per model line.
    "haiku": "anthropic:claude-haiku-5-5",
    "sonnet": "anthropic:claude-sonnet-5-5",
    "opus": "anthropic:claude-opus-5-5",
    "fable": "anthropic:claude-fable-5-2",
    "mythos": "anthropic:claude-mythos-5-2",
    # OpenAI: the GPT-6 lines, and the GPT-5 models most used.
    "astra": "openai:gpt-6.2-astra",
    "sol": "openai:gpt-6.2-sol",
    "terra": "openai:gpt-6.1-terra",
    "luna": "openai:gpt-6-luna",
    "gpt-5.5": "openai:gpt-5.5",
    "gpt-5.4-mini": "openai:gpt-5.4-mini",
    # Announced for shutdown on 2027-01-14; kept so existing suites keep their names.
    "gpt-4.1": "openai:gpt-4.1",
    "gpt-4.1-mini": "openai:gpt-4.1-mini",
    "gpt-4o-mini": "openai:gpt-4o-mini",
    # Local models: a bare file name is looked up in ``skill_gguf_dirs`` at run time.
    "gemma3-270m": "gguf:gemma-3-270m-q4_k_m.gguf",
    "glm-4.7-flash": "hf:unsloth/GLM-4.7-Flash-GGUF:Q4_0",
}

#: Providers whose model is a local GGUF file run through llama.cpp.
LOCAL_PROVIDERS = frozenset({"gguf", "hf"})

_PROVIDER_RE = re.compile(r"^([a-z][a-z0-9_-]*):(?!//)(.+)$")
# Hugging Face repo ids: letters, digits, '-', '_' and '.', not starting with '.' or '-'.
_REPO_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_HF_QUANT_RE = re.compile(rf"^(?P<repo>{_REPO_PART}/{_REPO_PART})(?::(?P<quant>[A-Za-z0-9_.-]+))?$")
_HF_FILE_RE = re.compile(rf"^(?P<repo>{_REPO_PART}/{_REPO_PART})/(?P<file>[^:@]+\.gguf)$")


class SpecError(SkillsError, ValueError):
    """A model spec that cannot be parsed or resolved; the message says what to do."""


@dataclass(frozen=True)
class HFReference:
    """A GGUF model on the Hugging Face Hub: a repository and a quantization or a file."""

    repo: str
    #: The quantization tag (``Q4_K_M``), as llama.cpp's ``-hf OWNER/REPO:QUANT`` takes it.
    quant: str | None = None
    #: A file's path inside the repository, when named exactly.
    filename: str | None = None

    @property
    def text(self) -> str:
        """The reference as written after ``hf:``; the cache key names the model by it."""
        if self.filename:
            return f"{self.repo}/{self.filename}"
        return f"{self.repo}:{self.quant}" if self.quant else self.repo


def parse_hf_reference(text: str) -> HFReference:
    """``OWNER/REPO``, ``OWNER/REPO:QUANT`` or ``OWNER/REPO/PATH/FILE.gguf``."""
    match = _HF_FILE_RE.match(text)
    if match:
        filename = match["file"]
        if any(part in ("", ".", "..") for part in filename.split("/")):
            raise SpecError(f"hf:{text}: the file path inside the repository is not valid")
        return HFReference(repo=match["repo"], filename=filename)
    match = _HF_QUANT_RE.match(text)
    if match:
        return HFReference(repo=match["repo"], quant=match["quant"])
    raise SpecError(
        f"hf:{text}: write hf:OWNER/REPO, hf:OWNER/REPO:QUANT (e.g. "
        "hf:unsloth/GLM-4.7-Flash-GGUF:Q4_0) or hf:OWNER/REPO/FILE.gguf"
    )


@dataclass(frozen=True)
class ModelSpec:
    """A model as the user named it, resolved to a provider and a model id."""

    name: str
    provider: str
    model: str
    base_url: str | None = None

    @cached_property  # one string per model, not one per item that names it
    def resolved(self) -> str:
        text = f"{self.provider}:{self.model}"
        return f"{text}@{self.base_url}" if self.base_url else text

    @property
    def local(self) -> bool:
        """A GGUF file run in this process (``gguf:`` or ``hf:``)."""
        return self.provider in LOCAL_PROVIDERS

    @property
    def hf(self) -> HFReference | None:
        return parse_hf_reference(self.model) if self.provider == "hf" else None


def did_you_mean(typed: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for a near miss of a known name, else nothing."""
    close = difflib.get_close_matches(typed, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_aliases(lines: str | list[str]) -> dict[str, str]:
    """Parse ini ``alias = spec`` lines; blank lines and ``#`` comments are ignored."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    aliases: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        alias, sep, target = line.partition("=")
        if not sep or not alias.strip() or not target.strip():
            raise SpecError(
                f"skill_model_aliases: cannot read {raw.strip()!r}; "
                "write one 'alias = spec' per line"
            )
        aliases[alias.strip()] = target.strip()
    return aliases


_CREDENTIAL_QUERY_RE = re.compile(r"(?i)(key|token|secret|password|sig)")


def _carries_credentials(url: str) -> bool:
    if "@" in url:  # user:password@host (a base URL has no other use for one)
        return True
    return any(_CREDENTIAL_QUERY_RE.search(name) for name, _ in parse_qsl(urlsplit(url).query))


def parse_model_spec(text: str, aliases: Mapping[str, str] | None = None) -> ModelSpec:
    """Parse ``[provider:]name[@base_url]``, following aliases; keep the typed name."""
    table = dict(DEFAULT_ALIASES if aliases is None else aliases)
    typed = text.strip()
    if not typed:
        raise SpecError("empty model spec; name a model such as 'haiku' or 'openai:gpt-4.1-mini'")
    current, seen = typed, list[str]()
    while current in table:
        if current in seen:
            raise SpecError(f"model alias loop: {' -> '.join([*seen, current])}")
        seen.append(current)
        current = table[current]
    match = _PROVIDER_RE.match(current)
    if not match:
        raise SpecError(
            f"unknown model {typed!r}{did_you_mean(typed, table)}: use provider:name "
            f"(anthropic:, openai:, gguf:, hf:) or one of the aliases: "
            f"{', '.join(sorted(table))} (pytest --skill-models-list shows what each resolves to)"
        )
    provider, rest = match.groups()
    base_url: str | None = None
    if provider not in LOCAL_PROVIDERS and "@" in rest:
        rest, _, base_url = rest.partition("@")
        if _carries_credentials(base_url):
            # The spec becomes part of every test id, report and cache label: a key in
            # it would be printed everywhere. Name the spec without echoing the key.
            raise SpecError(
                f"model spec '{provider}:{rest}@...': its base URL carries credentials "
                "(user:password@ or a key in the query string), which would appear in "
                "every test id and report; put the key in the provider's environment "
                "variable (ANTHROPIC_API_KEY, OPENAI_API_KEY) instead"
            )
        if not re.match(r"^https?://", base_url):
            raise SpecError(
                f"model spec {typed!r}: base URL {base_url!r} must start with http:// or https://"
            )
    if not rest:
        raise SpecError(f"model spec {typed!r} names no model after '{provider}:'")
    if provider == "hf":
        try:
            parse_hf_reference(rest)
        except SpecError as error:
            raise SpecError(f"model spec {typed!r}: {error}") from None
    return ModelSpec(name=typed, provider=provider, model=rest, base_url=base_url)
