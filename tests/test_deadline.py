"""Every remote call ends at --skill-timeout, whatever the server does, and reads at most
the size cap of body, compressed or not: through the real SDKs, against a misbehaving
loopback server."""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_skills.backends import Backend, BackendError, BackendOptions
from pytest_skills.backends.anthropic import AnthropicBackend
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.models import ModelSpec, Request
from tests.slow_server import MisbehavingServer

#: The cap on a response body (backends/transport.py's MAX_RESPONSE_BYTES), in MB.
CAP_MB = 16
#: The outer guard: a call that is not bounded fails here instead of hanging the suite.
GUARD_S = 60.0
MakeBackend = Callable[[str, float], Backend]


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")


def anthropic(url: str, timeout: float) -> Backend:
    spec = ModelSpec("haiku", "anthropic", "claude-haiku-4-5", base_url=url)
    return AnthropicBackend(spec, BackendOptions(timeout=timeout))


def openai(url: str, timeout: float) -> Backend:
    spec = ModelSpec("mini", "openai", "gpt-4.1-mini", base_url=url + "/v1")
    return OpenAIBackend(spec, BackendOptions(timeout=timeout))


BACKENDS = [
    pytest.param(anthropic, "Anthropic", id="anthropic"),
    pytest.param(openai, "OpenAI", id="openai"),
]


def call(backend: Backend) -> BackendError:
    """The error one call ends in, within the outer guard."""
    if isinstance(backend, AnthropicBackend):
        request = Request(provider="anthropic", model="claude-haiku-4-5", prompt="hi")
    else:
        request = Request(provider="openai", model="gpt-4.1-mini", prompt="hi")
    pool = ThreadPoolExecutor(1)
    future = pool.submit(backend.complete, request)
    try:
        future.result(timeout=GUARD_S)
    except BackendError as error:
        return error
    except TimeoutError:
        # Not waited for: leaving the server's block stops its sending, which ends it.
        pytest.fail(f"the call was still running after {GUARD_S:g}s")
    finally:
        pool.shutdown(wait=False)
    pytest.fail("the call succeeded")


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
@pytest.mark.parametrize("mode", ["slow-headers", "slow-body", "endless"])
def test_a_slow_or_endless_response_ends_at_the_deadline(
    make: MakeBackend, provider: str, mode: str
) -> None:
    with MisbehavingServer(mode) as server:
        error = call(make(server.url, 1.0))
        assert server.requests == 1
    assert error.message.startswith(f"{provider}: no answer within 1s from http://127.0.0.1:")
    assert "(--skill-timeout bounds each call, from connecting to the last byte)" in error.message
    assert error.retryable


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def test_the_cap_is_what_the_tests_assume() -> None:
    from pytest_skills.backends.transport import MAX_RESPONSE_BYTES

    assert MAX_RESPONSE_BYTES == CAP_MB * 2**20


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_a_gzip_bomb_is_cut_at_the_cap_without_inflating_it(
    make: MakeBackend, provider: str
) -> None:
    with MisbehavingServer("gzip-bomb") as server:
        from tests.slow_server import gzip_bomb

        assert len(gzip_bomb()) < 2**20  # half a megabyte on the wire
        before = peak_rss_bytes()
        error = call(make(server.url, 60.0))
        grown = peak_rss_bytes() - before
    cap = CAP_MB
    assert error.message == (
        f"{provider}: the response from {server.url}/v1/"
        f"{'messages' if provider == 'Anthropic' else 'chat/completions'} is larger than "
        f"{cap} MB (once gzip-decoded); it was not read further"
    )
    assert not error.retryable
    assert grown < 128 * 2**20, f"reading it grew the process by {grown // 2**20} MB"


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_an_uncompressed_body_over_the_cap_is_refused(make: MakeBackend, provider: str) -> None:
    with MisbehavingServer("big") as server:
        error = call(make(server.url, 60.0))
    assert error.message.startswith(f"{provider}: the response from http://127.0.0.1:")
    assert error.message.endswith(f"is larger than {CAP_MB} MB; it was not read further")


@pytest.mark.parametrize(("make", "provider"), BACKENDS)
def test_an_encoding_not_asked_for_is_refused(make: MakeBackend, provider: str) -> None:
    with MisbehavingServer("brotli") as server:
        error = call(make(server.url, 60.0))
    assert "is encoded as 'br', which was not asked for (only gzip, deflate)" in error.message


ANTHROPIC_BODIES = [
    ('"just a string"', "the body is the string 'just a string', not a message object"),
    ("[1, 2]", "the body is a list, not a message object"),
    (
        json.dumps({"type": "message", "content": "hello", "usage": {}}),
        "'content' is the string 'hello', not a list of blocks",
    ),
    (
        json.dumps({"type": "message", "content": [{"type": "text", "text": 3}], "usage": {}}),
        "'content[0].text' is a number, not a string",
    ),
    # A negative or fractional count is read as 0 or rounded (tests/test_cache_writes.py).
    (
        json.dumps(
            {"type": "message", "content": [], "usage": {"input_tokens": 1, "output_tokens": 1e400}}
        ).replace("Infinity", "1" + "0" * 400),
        "'usage.output_tokens' is a number, not a token count",
    ),
]
OPENAI_BODIES = [
    ('"just a string"', "the body is the string 'just a string', not a completion object"),
    (json.dumps({"choices": "x"}), "'choices' is the string 'x', not a list"),
    (json.dumps({"choices": []}), "'choices' is empty"),
    (json.dumps({"choices": [{"message": "hi"}]}), "'choices[0].message' is the string 'hi'"),
    (
        json.dumps({"choices": [{"message": {"content": ["a"]}}]}),
        "'choices[0].message.content' is a list, not a string",
    ),
    (
        json.dumps({"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": "1"}}),
        "'usage.prompt_tokens' is the string '1', not a token count",
    ),
    (
        json.dumps({"choices": [{"message": {"content": "a", "tool_calls": "x"}}]}),
        "'tool_calls' is the string 'x', not a list",
    ),
    (
        json.dumps(
            {"choices": [{"message": {"content": "a", "tool_calls": [{"id": "c", "function": 3}]}}]}
        ),
        "'tool_calls[0].function' is a number",
    ),
]


@pytest.mark.parametrize(
    ("make", "body", "problem"),
    [
        pytest.param(anthropic, body, problem, id=f"anthropic-{i}")
        for i, (body, problem) in enumerate(ANTHROPIC_BODIES)
    ]
    + [
        pytest.param(openai, body, problem, id=f"openai-{i}")
        for i, (body, problem) in enumerate(OPENAI_BODIES)
    ],
)
def test_a_body_of_the_wrong_shape_is_one_clear_message(
    make: MakeBackend, body: str, problem: str
) -> None:
    with MisbehavingServer("raw", body=body.encode()) as server:
        error = call(make(server.url, 30.0))
    if make is anthropic:
        head = "Anthropic: the response for claude-haiku-4-5 is not a Messages API answer: "
    else:
        head = "OpenAI: the response for gpt-4.1-mini is not a chat completion: "
    assert error.message.startswith(head + problem), error.message
    assert "AttributeError" not in error.message
