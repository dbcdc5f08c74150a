"""The remote backends, driven through the real SDKs against the loopback server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from pytest_skills.backends import Backend, BackendError, BackendOptions, MissingCredentialsError
from pytest_skills.backends.anthropic import AnthropicBackend
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.models import ModelSpec, Request, Response, Sampling, parse_model_spec
from tests.conftest import clear_sdk_variables
from tests.loopback import Call as WireCall
from tests.loopback import LoopbackServer, echo

SKILL = '# kernel-builder\n\nTarget H100 with capabilities = ["9.0"].'
SKILL_TOKENS = len(SKILL.split())  # the loopback counts words as tokens
SETTINGS = BackendOptions(timeout=5.0)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_sdk_variables(monkeypatch)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def anthropic_backend(
    server: LoopbackServer, settings: BackendOptions = SETTINGS
) -> AnthropicBackend:
    spec = ModelSpec("haiku", "anthropic", "claude-haiku-4-5", base_url=server.url)
    return AnthropicBackend(spec, settings)


def openai_backend(server: LoopbackServer, settings: BackendOptions = SETTINGS) -> OpenAIBackend:
    spec = ModelSpec("mini", "openai", "gpt-4.1-mini", base_url=server.openai_url)
    return OpenAIBackend(spec, settings)


MakeBackend = Callable[..., Backend]  # (server, settings=SETTINGS) -> backend
BACKENDS = [
    pytest.param(anthropic_backend, "Anthropic", id="anthropic"),
    pytest.param(openai_backend, "OpenAI", id="openai"),
]


def ask(
    backend: Backend,
    prompt: str = "Write build.toml",
    *,
    system: str | None = None,
    sampling: Sampling | None = None,
) -> Response:
    provider = "anthropic" if isinstance(backend, AnthropicBackend) else "openai"
    model = "claude-haiku-4-5" if provider == "anthropic" else "gpt-4.1-mini"
    request = Request(
        provider=provider,
        model=model,
        prompt=prompt,
        system=system,
        sampling=sampling or Sampling(),
    )
    return backend.complete(request)


def error_from(backend: Backend) -> BackendError:
    with pytest.raises(BackendError) as info:
        ask(backend)
    return info.value


# -- Anthropic -----------------------------------------------------------------------


def test_anthropic_with_skill_caches_the_skill_block(server: LoopbackServer) -> None:
    backend = anthropic_backend(server)
    first = ask(backend, "Write build.toml", system=SKILL)
    second = ask(backend, "Write build.toml again", system=SKILL)

    call = server.calls[0]
    assert call.body["system"] == [
        {"type": "text", "text": SKILL, "cache_control": {"type": "ephemeral"}}
    ]
    assert call.body["messages"] == [{"role": "user", "content": "Write build.toml"}]
    assert call.body["max_tokens"] == 1024
    assert "temperature" not in call.body  # API 2026-10-21 rejects sampling parameters

    assert first.text == "echo: Write build.toml | skill: # kernel-builder"
    assert first.usage.input_tokens == 2
    assert first.usage.output_tokens == len(first.text.split())
    assert (first.usage.cache_write_tokens, first.usage.cache_read_tokens) == (SKILL_TOKENS, 0)
    assert (second.usage.cache_write_tokens, second.usage.cache_read_tokens) == (0, SKILL_TOKENS)
    assert first.stop_reason == "end_turn"
    assert first.reported_model == "claude-haiku-4-5"
    assert first.latency_s > 0
    assert first.recorded_at is not None
    assert datetime.fromisoformat(first.recorded_at).utcoffset() is not None
    assert not first.cached


def test_anthropic_without_skill_sends_no_system(server: LoopbackServer) -> None:
    response = ask(anthropic_backend(server), sampling=Sampling(max_tokens=64, seed=7))

    body = server.calls[0].body
    assert "system" not in body
    assert "seed" not in body  # the Messages API has no seed
    assert body["max_tokens"] == 64
    assert response.text == "echo: Write build.toml"
    assert (response.usage.cache_read_tokens, response.usage.cache_write_tokens) == (0, 0)


def test_anthropic_sends_the_key_and_api_version(server: LoopbackServer) -> None:
    ask(anthropic_backend(server))
    headers = server.calls[0].headers
    assert "test-key" in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    assert headers["anthropic-version"]


def test_anthropic_base_url_from_environment(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    backend = AnthropicBackend(parse_model_spec("haiku"), SETTINGS)
    assert ask(backend).text == "echo: Write build.toml"


def test_anthropic_auth_token_is_a_credential(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "token")
    assert ask(anthropic_backend(server)).text == "echo: Write build.toml"


def test_anthropic_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(MissingCredentialsError) as info:
        AnthropicBackend(parse_model_spec("haiku"), SETTINGS)
    assert info.value.variable == "ANTHROPIC_API_KEY"
    assert "ANTHROPIC_API_KEY" in str(info.value)
    assert not info.value.retryable


def test_anthropic_overloaded_is_retryable(server: LoopbackServer) -> None:
    server.fail_next(529, message="Overloaded")
    error = error_from(anthropic_backend(server))
    assert error.retryable
    assert error.message == "Anthropic 529: Overloaded"


def test_anthropic_max_tokens_stop_reason(server: LoopbackServer) -> None:
    response = ask(anthropic_backend(server), sampling=Sampling(max_tokens=2))
    assert response.text == "echo: Write"
    assert response.stop_reason == "max_tokens"


# -- OpenAI --------------------------------------------------------------------------


def test_openai_with_skill_subtracts_cached_tokens(server: LoopbackServer) -> None:
    backend = openai_backend(server)
    first = ask(backend, "Write build.toml", system=SKILL)
    second = ask(backend, "Write build.toml again", system=SKILL)

    assert server.calls[0].body["messages"] == [
        {"role": "system", "content": SKILL},
        {"role": "user", "content": "Write build.toml"},
    ]
    assert first.text == "echo: Write build.toml | skill: # kernel-builder"
    # prompt_tokens includes cached and newly cached tokens; input_tokens must not.
    assert first.usage.input_tokens == 2
    assert (first.usage.cache_write_tokens, first.usage.cache_read_tokens) == (SKILL_TOKENS, 0)
    assert second.usage.input_tokens == 3
    assert (second.usage.cache_write_tokens, second.usage.cache_read_tokens) == (0, SKILL_TOKENS)
    assert first.usage.output_tokens == len(first.text.split())
    assert first.stop_reason == "stop"
    assert first.reported_model == "gpt-4.1-mini"
    assert first.latency_s > 0


def test_openai_without_skill_forwards_sampling_and_seed(server: LoopbackServer) -> None:
    backend = openai_backend(server)
    response = ask(backend, sampling=Sampling(temperature=0.5, max_tokens=64, seed=42))
    ask(backend)

    with_seed, without_seed = (call.body for call in server.calls)
    assert with_seed["messages"] == [{"role": "user", "content": "Write build.toml"}]
    assert (with_seed["temperature"], with_seed["max_tokens"], with_seed["seed"]) == (0.5, 64, 42)
    assert without_seed["temperature"] == 0
    assert "seed" not in without_seed
    assert response.text == "echo: Write build.toml"
    assert response.usage.input_tokens == 2
    assert (response.usage.cache_read_tokens, response.usage.cache_write_tokens) == (0, 0)


def test_openai_length_stop_reason(server: LoopbackServer) -> None:
    response = ask(openai_backend(server), sampling=Sampling(max_tokens=2))
    assert response.stop_reason == "length"


def test_openai_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingCredentialsError) as info:
        OpenAIBackend(parse_model_spec("openai:gpt-4.1-mini"), SETTINGS)
    assert info.value.variable == "OPENAI_API_KEY"


def test_openai_compatible_server_needs_no_key(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    spec = parse_model_spec(f"openai:qwen3@{server.openai_url}")
    response = OpenAIBackend(spec, SETTINGS).complete(
        Request(provider="openai", model="qwen3", prompt="hi", base_url=spec.base_url)
    )
    assert response.text == "echo: hi"
    assert server.calls[0].headers["authorization"] == "Bearer not-needed"


def test_openai_server_error_is_retryable(server: LoopbackServer) -> None:
    server.fail_next(503)
    error = error_from(openai_backend(server))
    assert error.retryable
    assert error.message.startswith("OpenAI 503: ")


# -- both ----------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_rate_limit_is_retryable_with_retry_after(
    server: LoopbackServer, make: MakeBackend, provider: str
) -> None:
    server.fail_next(429, retry_after=1.5, message="Number of requests exceeds your rate limit")
    error = error_from(make(server))
    assert error.retryable
    assert error.retry_after == 1.5
    assert error.message == f"{provider} 429: Number of requests exceeds your rate limit"
    assert len(server.calls) == 1  # the SDK did not retry on its own


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_bad_request_is_not_retryable(
    server: LoopbackServer, make: MakeBackend, provider: str
) -> None:
    server.fail_next(400, message="max_tokens: must be positive")
    error = error_from(make(server))
    assert not error.retryable
    assert error.retry_after is None
    assert error.message == f"{provider} 400: max_tokens: must be positive"
    assert "Traceback" not in error.message


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_connection_refused_is_retryable(
    server: LoopbackServer, make: MakeBackend, provider: str
) -> None:
    backend = make(server)
    ask(backend)  # leaves a pooled keep-alive connection behind
    server.stop()
    error = error_from(backend)
    assert error.retryable
    assert error.message.startswith(f"{provider}: cannot reach http://127.0.0.1:")


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_timeout_is_retryable(make: MakeBackend, provider: str) -> None:
    with LoopbackServer(latency=2.0) as slow:
        error = error_from(make(slow, BackendOptions(timeout=0.2)))
    assert error.retryable
    assert error.message.startswith(f"{provider}: no answer within 0.2s")


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_failures_are_consumed_in_order(
    server: LoopbackServer, make: MakeBackend, provider: str
) -> None:
    backend = make(server)
    server.fail_next(500, times=2)
    assert error_from(backend).retryable
    assert error_from(backend).retryable
    assert ask(backend).text == "echo: Write build.toml"
    assert len(server.calls) == 3


def test_concurrent_requests_overlap() -> None:
    # The server holds every request until four are in flight at once: if the client
    # sent them one after another, the first would never be answered (the guard says so).
    all_arrived = threading.Barrier(4, timeout=600)

    def together(call: WireCall) -> str:
        if call.prompt.startswith("case"):
            all_arrived.wait()
        return echo(call)

    with LoopbackServer(responder=together) as server:
        backend = openai_backend(server, BackendOptions(timeout=600))
        # The first call goes alone (the backend learns what the model accepts from it).
        assert ask(backend, "warm-up").text == "echo: warm-up"
        with ThreadPoolExecutor(max_workers=4) as pool:
            texts = list(pool.map(lambda n: ask(backend, f"case {n}").text, range(4)))
        backend.close()
    assert texts == [f"echo: case {n}" for n in range(4)]


def test_custom_responder_sees_the_call() -> None:
    with LoopbackServer(responder=lambda call: f"{call.api}:{call.model}:{call.system}") as srv:
        assert ask(anthropic_backend(srv), system="S").text == "anthropic:claude-haiku-4-5:S"
        assert ask(openai_backend(srv)).text == "openai:gpt-4.1-mini:None"
