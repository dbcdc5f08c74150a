"""Provider batch clients, driven through the real SDKs against the loopback's batch
endpoints: what a batch sends equals what a live call sends, and what it answers reads
as a live answer does; errored, expired and canceled requests and malformed result
lines become items that say so."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_skills.backends import BackendError, BackendOptions
from pytest_skills.backends.anthropic import AnthropicBackend
from pytest_skills.backends.batches import MAX_LINE_CHARS, BatchClient, BatchItem, ItemState
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.backends.openai_batches import batch_lines, chat_body, read_batch_output
from pytest_skills.models import ModelSpec, Reasoning, Request, Sampling, Tool
from tests.conftest import clear_sdk_variables
from tests.loopback import Call, LoopbackServer, echo
from tests.loopback_tools import ToolUse

SETTINGS = BackendOptions(timeout=10.0)
SKILL = "# pdf-filler\n\nFill the form fields in order."
TOOL = Tool("read_file", "Read a file", json.dumps({"type": "object", "properties": {}}))
MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1-mini"}


def responder(call: Call) -> str | ToolUse:
    """Echo, or call a tool when one is offered (so tool calls are compared too)."""
    if call.tools and not call.history:
        return ToolUse((("read_file", {"path": "form.pdf"}),), text="Reading it.")
    return echo(call)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """The batch server, reached as the official APIs are: through the SDKs' variables."""
    clear_sdk_variables(monkeypatch)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with LoopbackServer(responder) as running:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", running.url)
        monkeypatch.setenv("OPENAI_BASE_URL", running.openai_url)
        yield running


def backend(provider: str) -> AnthropicBackend | OpenAIBackend:
    spec = ModelSpec(provider, provider, MODELS[provider])
    if provider == "anthropic":
        return AnthropicBackend(spec, SETTINGS)
    return OpenAIBackend(spec, SETTINGS)


def batches(provider: str) -> BatchClient:
    client = backend(provider).batches
    assert client is not None
    assert isinstance(client, BatchClient)
    return client


def requests(provider: str) -> list[tuple[str, Request]]:
    model = MODELS[provider]
    plain = Request(provider=provider, model=model, prompt="Fill in the name field")
    return [
        ("a" * 64, dataclasses.replace(plain, sampling=Sampling(max_tokens=3))),
        ("b" * 64, dataclasses.replace(plain, system=SKILL, prompt="Fill in the date")),
        ("c" * 64, dataclasses.replace(plain, prompt="Open the form", tools=(TOOL,))),
        (
            "d" * 64,
            dataclasses.replace(plain, sampling=Sampling(reasoning=Reasoning("low", 2000))),
        ),
    ]


PROVIDERS = ["anthropic", "openai"]


def results(client: BatchClient, batch_id: str) -> dict[str, BatchItem]:
    items = list(client.results(batch_id))
    by_id = {item.custom_id: item for item in items}
    assert len(by_id) == len(items)
    return by_id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_sends_what_live_calls_send_and_answers_as_they_do(
    server: LoopbackServer, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = batches(provider)
    sent = requests(provider)
    batch_id = client.submit(sent)

    status = client.status(batch_id)
    assert (status.batch_id, status.ended, dict(status.counts)) == (
        batch_id,
        False,
        {"processing": 4},
    )
    assert server.calls == []  # nothing went live
    [submitted] = server.batches
    assert (submitted.id, submitted.api, submitted.custom_ids) == (
        batch_id,
        provider,
        tuple(custom_id for custom_id, _ in sent),
    )

    server.end_batches()
    status = client.status(batch_id)
    assert status.ended and dict(status.counts) == {"succeeded": 4}
    items = results(client, batch_id)

    # The same requests, live, against a fresh server (its prompt cache as empty).
    with LoopbackServer(responder) as live_server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", live_server.url)
        monkeypatch.setenv("OPENAI_BASE_URL", live_server.openai_url)
        live = backend(provider)
        answers = {custom_id: live.complete(request) for custom_id, request in sent}
        live_bodies = [call.body for call in live_server.calls]
    assert [body for _, body in submitted.requests] == live_bodies
    for custom_id, answer in answers.items():
        item = items[custom_id]
        assert item.state is ItemState.SUCCEEDED and item.error is None
        assert item.response is not None
        assert item.response.extra == {**answer.extra, "batch": batch_id}
        assert item.response.latency_s == 0.0
        same = dataclasses.replace(
            item.response,
            latency_s=answer.latency_s,
            recorded_at=answer.recorded_at,
            extra=answer.extra,
        )
        assert same == answer
    assert items["c" * 64].response.tool_calls  # type: ignore[union-attr]
    assert items["a" * 64].response.stop_reason in ("max_tokens", "length")  # type: ignore[union-attr]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_partly_errored_batch(server: LoopbackServer, provider: str) -> None:
    client = batches(provider)
    batch_id = client.submit(requests(provider))
    server.end_batches(lambda custom_id, index: "errored" if index in (1, 3) else "succeeded")
    status = client.status(batch_id)
    assert status.ended and dict(status.counts) == {"succeeded": 2, "errored": 2}
    assert (status.total, status.done) == (4, 4)
    items = results(client, batch_id)
    assert [items[c * 64].state for c in "abcd"] == [
        ItemState.SUCCEEDED,
        ItemState.ERRORED,
        ItemState.SUCCEEDED,
        ItemState.ERRORED,
    ]
    error = items["b" * 64].error
    assert error is not None and "\n" not in error
    assert "invalid_request_error" in error or "OpenAI 400" in error
    assert "The request was refused while the batch was processed." in error
    assert items["b" * 64].response is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_expired_batch(server: LoopbackServer, provider: str) -> None:
    client = batches(provider)
    batch_id = client.submit(requests(provider))
    server.end_batches(lambda custom_id, index: "succeeded" if index == 0 else "expired")
    status = client.status(batch_id)
    assert status.ended and dict(status.counts) == {"succeeded": 1, "expired": 3}
    items = results(client, batch_id)
    assert items["a" * 64].state is ItemState.SUCCEEDED
    for c in "bcd":
        assert items[c * 64].state is ItemState.EXPIRED
        assert items[c * 64].response is None and "expire" in (items[c * 64].error or "")
    assert server.batches[0].status == ("ended" if provider == "anthropic" else "expired")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_canceled_batch(server: LoopbackServer, provider: str) -> None:
    client = batches(provider)
    batch_id = client.submit(requests(provider))
    canceling = client.cancel(batch_id)
    assert not canceling.ended and dict(canceling.counts) == {"processing": 4}
    server.end_batches()  # a batch being canceled ends with its requests canceled
    status = client.status(batch_id)
    assert status.ended and dict(status.counts) == {"canceled": 4}
    items = results(client, batch_id)
    assert {item.state for item in items.values()} == {ItemState.CANCELED}
    assert len(items) == 4 and all(item.error for item in items.values())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_ends_after_polls(server: LoopbackServer, provider: str) -> None:
    client = batches(provider)
    server.end_batches_after(3)
    batch_id = client.submit(requests(provider)[:2])
    polls = 1
    while not client.status(batch_id).ended:
        polls += 1
        assert polls <= 3
    assert polls == 3
    assert {item.state for item in client.results(batch_id)} == {ItemState.SUCCEEDED}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_results_before_the_end_are_refused_in_one_line(
    server: LoopbackServer, provider: str
) -> None:
    client = batches(provider)
    batch_id = client.submit(requests(provider)[:1])
    with pytest.raises(BackendError) as info:
        list(client.results(batch_id))
    assert "\n" not in info.value.message
    assert info.value.message.startswith("Anthropic" if provider == "anthropic" else "OpenAI")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_errors_become_one_line_backend_errors(server: LoopbackServer, provider: str) -> None:
    client = batches(provider)
    server.fail_next(401)
    with pytest.raises(BackendError) as info:
        client.submit(requests(provider)[:1])
    name = "Anthropic" if provider == "anthropic" else "OpenAI"
    assert info.value.message == f"{name} 401: Invalid API key"
    assert not info.value.retryable
    server.fail_next(529 if provider == "anthropic" else 503)
    with pytest.raises(BackendError) as info:
        client.status("msgbatch_none" if provider == "anthropic" else "batch_none")
    assert info.value.retryable
    with pytest.raises(BackendError) as info:
        client.status("msgbatch_none" if provider == "anthropic" else "batch_none")
    assert info.value.message.startswith(f"{name} 404: ")
    assert server.batches == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_custom_ids_are_refused_before_sending(
    server: LoopbackServer, provider: str
) -> None:
    client = batches(provider)
    request = requests(provider)[0][1]
    with pytest.raises(BackendError, match="twice"):
        client.submit([("a" * 64, request), ("a" * 64, request)])
    with pytest.raises(BackendError, match="at least one request"):
        client.submit([])
    if provider == "anthropic":
        with pytest.raises(BackendError, match="letters, digits"):
            client.submit([("not a key!", request)])
    assert server.batches == []


MALFORMED = [
    "this is not JSON",
    "[1, 2]",
    '{"custom_id": 5, "result": {"type": "succeeded"}}',
    "x" * 10,
]


def test_malformed_anthropic_result_lines_become_errored_items(server: LoopbackServer) -> None:
    client = batches("anthropic")
    batch_id = client.submit(requests("anthropic")[:1])
    server.end_batches()
    server.batch_api.add_result_lines(
        batch_id,
        [
            *MALFORMED,
            json.dumps({"custom_id": "e" * 64, "result": {"type": "exploded"}}),
            json.dumps({"custom_id": "f" * 64, "result": {"type": "succeeded", "message": 7}}),
            json.dumps(
                {
                    "custom_id": "g" * 64,
                    "result": {"type": "succeeded", "message": {"type": "message", "content": 3}},
                }
            ),
            json.dumps({"custom_id": "h" * 64, "result": {"type": "errored", "error": "boom"}}),
        ],
    )
    items = list(client.results(batch_id))
    assert items[0].state is ItemState.SUCCEEDED
    bad = items[1:]
    assert [item.state for item in bad] == [ItemState.ERRORED] * 8
    assert [item.custom_id for item in bad] == [
        "",
        "",
        "",
        "",
        "e" * 64,
        "f" * 64,
        "g" * 64,
        "h" * 64,
    ]
    errors = [item.error or "" for item in bad]
    assert errors[0] == f"line 2 of the results of batch {batch_id} is not JSON"
    assert errors[1] == f"line 3 of the results of batch {batch_id} is a list, not an object"
    assert "has no custom_id ('custom_id' is a number)" in errors[2]
    assert "'result.type' is the string 'exploded'" in errors[4]
    assert "is a number, not a message" in errors[5]
    assert "'content' is a number, not a list of blocks" in errors[6]
    assert "wrong shape" in errors[7]
    assert all("\n" not in error for error in errors)


def test_malformed_openai_output_lines_become_errored_items(server: LoopbackServer) -> None:
    client = batches("openai")
    batch_id = client.submit(requests("openai")[:1])
    server.end_batches()
    server.batch_api.add_result_lines(
        batch_id,
        [
            *MALFORMED,
            json.dumps({"custom_id": "e" * 64, "response": None, "error": None}),
            json.dumps(
                {
                    "custom_id": "f" * 64,
                    "response": {"status_code": 500, "body": {"error": {"message": "oops"}}},
                }
            ),
            json.dumps(
                {"custom_id": "g" * 64, "response": {"status_code": 200, "body": {"choices": []}}}
            ),
            json.dumps({"custom_id": "h" * 64, "error": {"code": "batch_expired", "message": "x"}}),
        ],
    )
    items = list(client.results(batch_id))
    assert items[0].state is ItemState.SUCCEEDED
    bad = items[1:]
    assert [item.state for item in bad] == [ItemState.ERRORED] * 7 + [ItemState.EXPIRED]
    errors = [item.error or "" for item in bad]
    assert errors[0] == f"line 2 of the results of batch {batch_id} is not JSON"
    assert "'response' is missing (or null)" in errors[4]
    assert errors[5] == "OpenAI 500: oops"
    assert "'choices' is empty" in errors[6]
    assert errors[7] == "batch_expired: x"


def test_openai_batch_refused_as_a_whole_errors_every_request(server: LoopbackServer) -> None:
    openai_backend = backend("openai")
    client = openai_backend.batches
    assert client is not None
    sdk_client = openai_backend._client
    lines = [
        {"custom_id": "one", "method": "POST", "url": "/v1/chat/completions", "body": {}},
        {"custom_id": "two", "method": "POST", "url": "/v1/embeddings", "body": {}},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines).encode()
    upload = sdk_client.files.create(file=("in.jsonl", text), purpose="batch")
    batch = sdk_client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.status(batch.id).ended
    items = list(client.results(batch.id))
    assert [(item.custom_id, item.state) for item in items] == [
        ("one", ItemState.ERRORED),
        ("two", ItemState.ERRORED),
    ]
    assert {item.error for item in items} == {
        "the batch was refused: line 2: The url must be /v1/chat/completions, with method POST."
    }


def test_batches_are_none_for_a_server_named_by_the_spec(server: LoopbackServer) -> None:
    anthropic = AnthropicBackend(
        ModelSpec("gw", "anthropic", "claude-haiku-4-5", base_url=server.url), SETTINGS
    )
    openai = OpenAIBackend(
        ModelSpec("local", "openai", "qwen3", base_url=server.openai_url), SETTINGS
    )
    assert anthropic.batches is None and openai.batches is None
    assert backend("anthropic").batches is not None and backend("openai").batches is not None


def test_concurrent_submissions_are_each_recorded(server: LoopbackServer) -> None:
    client = batches("anthropic")
    sent = requests("anthropic")[:1]
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: client.submit(sent), range(8)))
    assert len(set(ids)) == 8 and server.batch_submissions == 8
    server.end_batches()
    assert all(client.status(batch_id).ended for batch_id in ids)


def test_anthropic_batch_uses_the_thinking_form_learned_live(server: LoopbackServer) -> None:
    """A batch cannot adapt to a 400: it sends the form a live call learned this run."""
    # A gateway's name for a model that thinks only on a budget, unlike what the id says.
    server.budget_thinking_models = frozenset({"claude-sonnet-4-6"})
    live = AnthropicBackend(ModelSpec("gw", "anthropic", "claude-sonnet-4-6"), SETTINGS)
    request = Request(
        provider="anthropic",
        model="claude-sonnet-4-6",
        prompt="Fill in the date",
        sampling=Sampling(reasoning=Reasoning("high")),
    )
    answer = live.complete(request)  # refused adaptive thinking, learned budget_tokens
    assert "adapted" in answer.extra
    assert live.batches is not None
    batch_id = live.batches.submit([("k" * 64, request)])
    [submitted] = server.batches
    assert submitted.requests[0][1] == server.calls[-1].body
    server.end_batches()
    [item] = list(live.batches.results(batch_id))
    assert item.state is ItemState.SUCCEEDED, item.error


# -- the pure functions: vLLM's run-batch reads and writes this format ----------------


def test_batch_file_for_a_compatible_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_sdk_variables(monkeypatch)
    spec = ModelSpec("vllm", "openai", "qwen3", base_url="http://127.0.0.1:1/v1")
    request = Request(provider="openai", model="qwen3", prompt="Fill in the name", system=SKILL)
    text = batch_lines([("k" * 64, chat_body(spec, request))])
    [line] = text.splitlines()
    assert text.endswith("\n")
    assert json.loads(line) == {
        "custom_id": "k" * 64,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "qwen3",
            "messages": [
                {"role": "system", "content": SKILL},
                {"role": "user", "content": "Fill in the name"},
            ],
            # A compatible server gets max_tokens; the official API max_completion_tokens.
            "max_tokens": 1024,
            "temperature": 0.0,
        },
    }
    official = chat_body(ModelSpec("mini", "openai", "gpt-4.1-mini"), request)
    assert "max_completion_tokens" in official and "max_tokens" not in official


def test_read_batch_output_reads_what_the_client_reads(server: LoopbackServer) -> None:
    """The output file, read by the pure function, gives the items the client gives."""
    client = batches("openai")
    batch_id = client.submit(requests("openai"))
    server.end_batches(lambda custom_id, index: "errored" if index == 2 else "succeeded")
    by_client = sorted(client.results(batch_id), key=lambda item: item.custom_id)
    openai_backend = backend("openai")
    assert isinstance(openai_backend, OpenAIBackend)
    batch = openai_backend._client.batches.retrieve(batch_id)
    texts = [
        openai_backend._client.files.content(file_id).text
        for file_id in (batch.output_file_id, batch.error_file_id)
        if file_id
    ]
    by_text = sorted(
        (item for text in texts for item in read_batch_output(text, batch_id)),
        key=lambda item: item.custom_id,
    )
    assert len(by_text) == 4

    def timeless(item: BatchItem) -> BatchItem:
        if item.response is None:
            return item
        return dataclasses.replace(
            item, response=dataclasses.replace(item.response, recorded_at=None)
        )

    assert [timeless(item) for item in by_text] == [timeless(item) for item in by_client]


def test_read_batch_output_survives_any_line() -> None:
    text = "\n".join(
        [
            "",
            "{",
            '"a string"',
            json.dumps({"custom_id": "x" * 65, "response": {}}),
            json.dumps({"custom_id": "ok", "error": {"code": "batch_cancelled", "message": "c"}}),
            json.dumps({"custom_id": "ok2", "response": {"status_code": 200, "body": []}}),
            json.dumps({"custom_id": "ok3", "response": {"status_code": "200", "body": {}}}),
            json.dumps({"custom_id": "ok4", "response": {"status_code": 502, "body": "<html>"}}),
            "z" * (MAX_LINE_CHARS + 1),
        ]
    )
    items = list(read_batch_output(text, "batch_local"))
    assert [(item.custom_id, item.state) for item in items] == [
        ("", ItemState.ERRORED),
        ("", ItemState.ERRORED),
        ("", ItemState.ERRORED),
        ("ok", ItemState.CANCELED),
        ("ok2", ItemState.ERRORED),
        ("ok3", ItemState.ERRORED),
        ("ok4", ItemState.ERRORED),
        ("", ItemState.ERRORED),
    ]
    errors = [item.error or "" for item in items]
    assert errors[0] == "line 2 of the results of batch batch_local is not JSON"
    assert errors[1].endswith("is the string 'a string', not an object")
    assert "has no custom_id ('custom_id' is the string 'xxxx" in errors[2]
    assert errors[3] == "batch_cancelled: c"
    assert "is a list, not a chat completion" in errors[4]
    assert errors[5].endswith("is not a result: 'response.status_code' is the string '200'")
    assert errors[6] == "OpenAI 502, unexplained"
    assert errors[7] == "line 9 of the results of batch batch_local is longer than 16 MB: not read"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_results_larger_than_one_answer_are_read(server: LoopbackServer, provider: str) -> None:
    """A results file may exceed the cap on one live answer's body (16 MB): it is read."""
    client = batches(provider)
    batch_id = client.submit(requests(provider)[:1])
    server.end_batches()
    pad = "p" * 2**20
    if provider == "anthropic":
        line: dict[str, object] = {"result": {"type": "expired"}, "pad": pad}
    else:
        line = {"error": {"code": "batch_expired", "message": "late"}, "pad": pad}
    lines = [json.dumps({"custom_id": f"big{n}", **line}) for n in range(17)]
    server.batch_api.add_result_lines(batch_id, lines)
    items = list(client.results(batch_id))
    assert len(items) == 18
    assert [item.state for item in items[1:]] == [ItemState.EXPIRED] * 17
