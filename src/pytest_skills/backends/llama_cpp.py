"""Local GGUF models through ``llama-cpp-python``, loaded once per process.

Two prompt layouts, chosen by the model file itself (``prompt_format="auto"``):

* ``chat_template``: the file carries ``tokenizer.chat_template``; we call
  ``create_chat_completion`` so the model's own template lays out system and user turns.
  Templates that refuse (or silently drop) a system turn get the skill folded into the
  user turn instead, still first.
* ``completion``: a base model without a template (the Gemma 3 270M demo). We write a
  plain prompt: skill, question, answer cue, and stop where a base model would start
  inventing the next question.

Either way the skill text comes first, so that consecutive with-skill requests share a
token prefix and llama.cpp re-evaluates only the part after it: ``Llama.generate``
keeps the KV cache of the longest common prefix with the previous call, as long as
the same ``Llama`` object is reused and nothing calls ``reset()``. Hence one shared
instance per file, and ``swa_full=True`` (see :func:`_load`).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest_skills.backends.tool_text as tool_text
from pytest_skills.backends.base import (
    THINK_CLOSE,
    THINK_OPEN,
    BackendError,
    BackendOptions,
    recorded_now,
    split_reasoning,
)
from pytest_skills.backends.gguf import file_sha256, locate_gguf, read_gguf_header
from pytest_skills.backends.huggingface import locate_hf_gguf
from pytest_skills.models import ModelSpec, Request, Response, ToolCall, Usage

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from llama_cpp import Llama


INSTALL_HINT = 'pip install "pytest-skills[local]"'
#: Large enough for a SKILL.md, a case with context files and a bounded answer, small
#: enough that a model trained on 128k+ tokens does not reserve gigabytes of KV cache.
DEFAULT_N_CTX = 4096
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"

CHAT_TEMPLATE = "chat_template"
COMPLETION = "completion"

# Completion layout for base models. The skill (system) block comes first and the
# separators are fixed strings, so every with-skill prompt starts with the same tokens.
QUESTION_CUE = "Question: "
ANSWER_CUE = "\nAnswer:"
#: A base model that has answered tends to carry on with another "Question:" or a
#: document-like break; these end the answer there.
COMPLETION_STOPS = ("\nQuestion:", "\nQ:", "\nAnswer:", "\n\n\n")


def completion_prompt(system: str | None, prompt: str) -> str:
    """Plain-text prompt for a model without a chat template, skill first."""
    head = f"{system.rstrip()}\n\n" if system else ""
    return f"{head}{QUESTION_CUE}{prompt.strip()}{ANSWER_CUE}"


def choose_prompt_format(metadata: Mapping[str, Any]) -> str:
    """``chat_template`` when the file carries a (non-empty) template, else ``completion``.

    Not llama-cpp-python's own choice: without a template it falls back to the
    Llama-2 chat format, which a model not trained on it reads as noise.
    """
    return CHAT_TEMPLATE if metadata.get(CHAT_TEMPLATE_KEY) else COMPLETION


def chat_messages(system: str | None, prompt: str, *, system_role: bool) -> list[dict[str, str]]:
    """System + user turns, or one user turn that starts with the skill."""
    if system is None:
        return [{"role": "user", "content": prompt}]
    if system_role:
        return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    return [{"role": "user", "content": f"{system.rstrip()}\n\n{prompt}"}]


def template_accepts_system(template: str) -> bool:
    """Whether a chat template renders a system turn (some raise, some drop it silently)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # lazy, like every llama_cpp import

    sentinel = "SYSTEM-SENTINEL-7f3a"
    # The SDK types each role's message apart; these are plain dicts of its shape.
    probe: Any = [{"role": "system", "content": sentinel}, {"role": "user", "content": "hi"}]
    try:
        rendered = Jinja2ChatFormatter(template, eos_token="", bos_token="")(messages=probe)
    except Exception:  # raise_exception() -> ValueError; template bugs -> jinja2 errors
        return False
    return sentinel in rendered.prompt


def template_opens_think(template: str) -> bool:
    """Whether the template's generation prompt opens a ``<think>`` block itself.

    DeepSeek-R1-style templates end the prompt with ``<think>``, so the model writes
    only the closing tag; when ``max_tokens`` cuts the reasoning short there is no tag
    at all, and the reasoning would pass for the answer.
    """
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # lazy, like every llama_cpp import

    probe: Any = [{"role": "user", "content": "hi"}]
    try:
        rendered = Jinja2ChatFormatter(template, eos_token="", bos_token="")(messages=probe)
    except Exception:  # a template that cannot render a plain user turn opens nothing
        return False
    return rendered.prompt.rstrip().endswith(THINK_OPEN)


def _cpu_threads() -> int:
    """Threads for one model: the usable cores, shared out among xdist workers.

    llama.cpp's threads busy-wait between graph nodes, so two workers that each take
    every core run far slower than one: on 2 cores, this module's tests took 42 s under
    ``-n 2`` instead of 9 s.
    """
    # Honour taskset/cgroup CPU masks where the platform exposes them.
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    try:
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        workers = 1
    return max(1, cores // max(1, workers))


def installed_llama_cpp_version() -> str | None:
    """The installed llama-cpp-python's version, read without importing it."""
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return None


#: llama.cpp's own log lines (model loading, "using full-size SWA cache", ...) go to this
#: logger at DEBUG level instead of stderr, where they would break pytest's output;
#: ``--log-cli-level=DEBUG`` or a failing test's captured log shows them.
LLAMA_LOGGER = logging.getLogger("pytest_skills.llama_cpp")
_log_callback: Any = None


def _route_llama_logs(llama_cpp: Any) -> None:
    global _log_callback
    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def to_logger(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            LLAMA_LOGGER.debug("%s", message)

    _log_callback = to_logger  # kept alive: llama.cpp holds only a C pointer to it
    llama_cpp.llama_log_set(to_logger, ctypes.c_void_p(0))


def model_file(spec: ModelSpec, options: BackendOptions) -> Path:
    """The GGUF file a ``gguf:`` or ``hf:`` spec names, on this machine."""
    ref = spec.hf
    if ref is not None:
        return locate_hf_gguf(ref, tuple(options.gguf_dirs), download=options.hf_download)
    return locate_gguf(spec.model, tuple(options.gguf_dirs), options.announce)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp  # lazy: replaying local answers needs no llama-cpp-python
    except ImportError as error:
        raise BackendError(
            f"local GGUF models need llama-cpp-python, which is not importable ({error}): "
            f"{INSTALL_HINT}, or replay recorded answers with --skill-cache=replay",
            model_unavailable=True,
        ) from None
    return llama_cpp


def _call_errors() -> tuple[type[Exception], ...]:
    """What a llama-cpp-python call raises for bad input rather than for a bug of ours."""
    from jinja2 import TemplateError  # a dependency of llama-cpp-python's chat formats

    return (ValueError, RuntimeError, TemplateError)


@dataclass
class _Loaded:
    llama: Llama
    prompt_format: str
    system_role: bool
    #: The chat template opens the answer with ``<think>`` (see template_opens_think).
    opens_think: bool = False


class LlamaCppBackend:
    """One local model file in this process; calls run one at a time."""

    exclusive = True

    _instances: ClassVar[dict[Path, LlamaCppBackend]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        #: How many times this instance loaded its model (tests check it stays 1).
        self.loads = 0
        self._loaded: _Loaded | None = None
        # llama.cpp contexts are not thread-safe, and the KV-cache reuse relies on
        # calls following each other, so one call at a time even if the runner forgets.
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, spec: ModelSpec, options: BackendOptions) -> LlamaCppBackend:
        """The process-wide backend of the file ``spec.model`` resolves to."""
        path = model_file(spec, options)
        with cls._instances_lock:
            backend = cls._instances.get(path)
            if backend is None:
                backend = cls._instances[path] = cls(path)
            return backend

    # --- loading --------------------------------------------------------------------

    def _model(self) -> _Loaded:
        if self._loaded is None:
            self._loaded = self._load()
            self.loads += 1
        return self._loaded

    def _load(self) -> _Loaded:
        llama_cpp = _import_llama_cpp()
        _route_llama_logs(llama_cpp)
        trained = read_gguf_header(self.path).context_length()
        n_ctx = min(DEFAULT_N_CTX, trained) if trained else DEFAULT_N_CTX
        threads = _cpu_threads()
        try:
            llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=-1 if llama_cpp.llama_supports_gpu_offload() else 0,
                # Sliding-window models (Gemma 3, ...) keep only the last window in a
                # small SWA cache, which cannot be cut back to a shared prefix; the
                # full-size cache can, so prefix reuse keeps working.
                swa_full=True,
                verbose=False,
            )
        except (ValueError, RuntimeError) as error:
            raise BackendError(
                f"llama.cpp could not load {self.path}: {error}", model_unavailable=True
            ) from None
        metadata = llama.metadata
        prompt_format = choose_prompt_format(metadata)
        chat = prompt_format == CHAT_TEMPLATE
        system_role = chat and template_accepts_system(metadata[CHAT_TEMPLATE_KEY])
        opens_think = chat and template_opens_think(metadata[CHAT_TEMPLATE_KEY])
        return _Loaded(llama, prompt_format, system_role, opens_think)

    @property
    def llama(self) -> Llama:
        """The loaded ``llama_cpp.Llama`` (loading it now if need be), for diagnostics."""
        with self._lock:
            return self._model().llama

    @property
    def prompt_format(self) -> str:
        """``chat_template`` or ``completion``; loads the model if it is not loaded yet."""
        with self._lock:
            return self._model().prompt_format

    # --- calls ----------------------------------------------------------------------

    def complete(self, request: Request) -> Response:
        with self._lock:
            loaded = self._model()
            prompt_format = self._prompt_format(loaded, request.prompt_format)
            before = _evaluated_tokens(loaded.llama)
            started = time.perf_counter()
            try:
                if request.tools:
                    result = self._with_tools(loaded, prompt_format, request)
                elif prompt_format == CHAT_TEMPLATE:
                    result = self._chat(loaded, request)
                else:
                    result = self._completion(loaded.llama, request)
            except _call_errors() as error:
                # Prompt longer than n_ctx, decode failure, a template that fails to render.
                raise BackendError(f"llama.cpp ({self.path.name}): {error}") from None
            latency = time.perf_counter() - started
            reused = _reused_prefix(before, loaded.llama, result["usage"]["prompt_tokens"])
            choice = result["choices"][0]
            raw = (choice["message"]["content"] if "message" in choice else choice["text"]) or ""
            if prompt_format == CHAT_TEMPLATE and loaded.opens_think and THINK_CLOSE not in raw:
                raw = THINK_OPEN + raw  # the template opened it, max_tokens cut it short
            # Reasoning models think aloud in <think> tags first; checks see the answer only.
            text, reasoning = split_reasoning(raw.strip())
            thought_tokens = _token_count(loaded.llama, reasoning)
            calls: tuple[ToolCall, ...] = ()
            if request.tools:
                text, calls = tool_text.parse(text, len(request.turns))
        return Response(
            text=text,
            reasoning=reasoning,
            usage=_usage(result["usage"], reused, thought_tokens),
            latency_s=latency,
            stop_reason=choice.get("finish_reason"),
            reported_model=self.path.name,
            recorded_at=recorded_now(),
            extra={
                "gguf_file": self.path.name,
                "gguf_sha256": file_sha256(self.path),
                "prompt_format": prompt_format,
                # Greedy answers change with the llama.cpp build: a replay warns on a change.
                "llama_cpp_version": installed_llama_cpp_version(),
                **({"tool_protocol": tool_text.PROTOCOL} if request.tools else {}),
            },
            tool_calls=calls,
        )

    def _prompt_format(self, loaded: _Loaded, requested: str | None) -> str:
        """The layout to use: "auto" lets the file decide; a plain prompt always works."""
        if requested in (None, "auto"):
            return loaded.prompt_format
        if requested in (COMPLETION, loaded.prompt_format):
            return requested
        if requested == CHAT_TEMPLATE:
            raise BackendError(
                f"{self.path.name} has no {CHAT_TEMPLATE_KEY}: prompt_format {requested!r} "
                f"cannot be honoured; use 'auto' or {COMPLETION!r}"
            )
        raise BackendError(
            f"unknown prompt_format {requested!r}: use 'auto', {CHAT_TEMPLATE!r} or {COMPLETION!r}"
        )

    def _chat(self, loaded: _Loaded, request: Request) -> Any:
        messages: Any = chat_messages(
            request.system, request.prompt, system_role=loaded.system_role
        )
        return loaded.llama.create_chat_completion(messages=messages, **_sampling(request))

    def _with_tools(self, loaded: _Loaded, prompt_format: str, request: Request) -> Any:
        """Tools through the text protocol (:mod:`~pytest_skills.backends.tool_text`):
        llama-cpp-python's tool calling needs a chat handler made for the model, which
        a GGUF's template alone does not give; a line protocol works with any model."""
        stops = [*tool_text.STOPS, *COMPLETION_STOPS]
        if prompt_format == CHAT_TEMPLATE:
            system = tool_text.system_text(request)
            messages: Any = chat_messages(system, request.prompt, system_role=loaded.system_role)
            messages += tool_text.chat_turns(request)
            return loaded.llama.create_chat_completion(
                messages=messages, stop=list(tool_text.STOPS), **_sampling(request)
            )
        prompt = tool_text.completion_text(request, QUESTION_CUE, ANSWER_CUE)
        return loaded.llama.create_completion(prompt=prompt, stop=stops, **_sampling(request))

    def _completion(self, llama: Llama, request: Request) -> Any:
        prompt = completion_prompt(request.system, request.prompt)
        return llama.create_completion(
            prompt=prompt, stop=list(COMPLETION_STOPS), **_sampling(request)
        )


def _sampling(request: Request) -> dict[str, Any]:
    sampling = request.sampling
    # Without a seed, llama-cpp-python derives each call's seed from the previous
    # call's, so answers would depend on call order (which xdist changes). The
    # request key differs per trial, so trials still differ when temperature > 0.
    seed = sampling.seed if sampling.seed is not None else int(request.key[:8], 16)
    return {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,  # 0 -> llama.cpp's greedy sampler
        "seed": seed,
    }


def _evaluated_tokens(llama: Llama) -> Sequence[int]:
    """The tokens whose KV entries the context holds now (a copy: the buffer is reused)."""
    return [int(t) for t in llama.input_ids[: llama.n_tokens]]


def _reused_prefix(before: Sequence[int], llama: Llama, prompt_tokens: int) -> int:
    """Prompt tokens served from the previous call's KV cache instead of re-evaluated.

    ``generate`` keeps the longest common prefix of the old and new token lists, less
    one token when the whole prompt matched (it must decode something to get logits).
    """
    prompt = llama.input_ids[:prompt_tokens]
    common = 0
    for old, new in zip(before, prompt, strict=False):
        if old != new:
            break
        common += 1
    return max(0, min(common, prompt_tokens - 1))


def _token_count(llama: Llama, text: str | None) -> int:
    """Tokens in ``text`` by the model's own tokenizer (for the reasoning it wrote)."""
    return len(llama.tokenize(text.encode("utf-8"), add_bos=False)) if text else 0


def _usage(usage: Mapping[str, int], reused: int, reasoning: int = 0) -> Usage:
    # As for the hosted APIs, input_tokens counts only what was computed afresh and
    # cache_read_tokens what came from the cache, so their sum is the prompt length.
    prompt_tokens = int(usage.get("prompt_tokens", 0))
    return Usage(
        input_tokens=prompt_tokens - reused,
        output_tokens=int(usage.get("completion_tokens", 0)),
        cache_read_tokens=reused,
        reasoning_tokens=reasoning,
    )
