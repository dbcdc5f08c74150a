"""Reasoning models as they really behave, through the real SDKs against the loopback
server: OpenAI's parameter rules and 400s, reasoning tokens, Anthropic thinking blocks,
inline ``<think>`` and ``reasoning_content`` from OpenAI-compatible servers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic as anthropic_sdk
import pytest

from pytest_skills.backends import BackendError, BackendOptions
from pytest_skills.backends.anthropic import AnthropicBackend, thinking_params
from pytest_skills.backends.base import split_reasoning
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.backends.openai_rules import (
    ALWAYS_REASONING,
    CHAT,
    OPTIONAL_REASONING,
    UNKNOWN,
    adaptation_for,
    model_family,
    parameter_rules,
)
from pytest_skills.models import (
    ModelSpec,
    Reasoning,
    Response,
    Sampling,
    parse_model_spec,
    parse_reasoning,
    request_for,
)
from tests.conftest import write_skill
from tests.loopback import Call, LoopbackServer

OPTIONS = BackendOptions(timeout=5.0)
GUESS_THEN_ANSWER = "<think>maybe sm_80 is right</think>The capability is 9.0"


def guess_then_answer(call: Call) -> str:
    return GUESS_THEN_ANSWER


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")


@pytest.fixture
def server() -> Any:
    with LoopbackServer(guess_then_answer, reasoning_models={"prod-deployment"}) as running:
        yield running


def openai_public(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, model: str):
    """The backend as it talks to api.openai.com: no base URL in the spec."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    spec = parse_model_spec(f"openai:{model}")
    return OpenAIBackend(spec, OPTIONS), spec


def ask(backend: Any, spec: ModelSpec, reasoning: str | None = None, **sampling: Any) -> Response:
    chosen = Sampling(**sampling).merged({"reasoning": reasoning} if reasoning else {})
    return backend.complete(request_for(spec, prompt="Which capability?", sampling=chosen))


# -- the setting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("high", Reasoning("high")),
        ("HIGH:8000", Reasoning("high", 8000)),
        ("off", Reasoning("none")),
        (False, Reasoning("none")),  # YAML reads `reasoning: off` as false
        ("minimal", Reasoning("minimal")),
    ],
)
def test_reasoning_levels_parse(text: object, expected: Reasoning) -> None:
    assert parse_reasoning(text) == expected


@pytest.mark.parametrize("text", ["extreme", "high:", "high:-5", "none:100", True, "", 3])
def test_bad_reasoning_levels_say_what_is_allowed(text: object) -> None:
    with pytest.raises(ValueError, match="reasoning"):
        parse_reasoning(text)


def test_reasoning_is_in_the_key_only_when_set() -> None:
    spec = parse_model_spec("openai:gpt-5.4-mini")
    plain = request_for(spec, prompt="q")
    high = request_for(spec, prompt="q", sampling=Sampling().merged({"reasoning": "high"}))
    off = request_for(spec, prompt="q", sampling=Sampling().merged({"reasoning": "off"}))
    # Entries recorded before the setting existed keep their keys.
    assert "reasoning" not in plain.key_fields()
    assert high.key_fields()["reasoning"] == "high"
    assert len({plain.key, high.key, off.key}) == 3


# -- OpenAI: the rules known up front --------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-5", ALWAYS_REASONING),
        ("gpt-5-mini", ALWAYS_REASONING),
        ("gpt-5-nano-2025-08-07", ALWAYS_REASONING),
        ("o4-mini", ALWAYS_REASONING),
        ("gpt-5.2-pro", ALWAYS_REASONING),
        ("gpt-5.4-mini", OPTIONAL_REASONING),
        ("gpt-5.5", OPTIONAL_REASONING),
        ("gpt-6.2-astra", OPTIONAL_REASONING),
        ("gpt-4.1-mini", CHAT),
        ("gpt-5-chat-latest", CHAT),
        ("qwen3", UNKNOWN),
    ],
)
def test_model_families(model: str, family: str) -> None:
    assert model_family(model) == family


def test_public_api_reasoning_model_gets_max_completion_tokens_and_no_max_tokens(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, spec = openai_public(server, monkeypatch, "gpt-5.4-mini")
    answer = ask(backend, spec)
    body = server.calls[0].body
    assert len(server.calls) == 1  # known up front: no 400 first
    assert "max_tokens" not in body
    assert body["max_completion_tokens"] == 1024
    # gpt-5.4 reasons with effort none by default, and then takes a temperature.
    assert body["temperature"] == 0
    assert "reasoning_effort" not in body
    assert answer.text == "The capability is 9.0"
    assert answer.usage.reasoning_tokens == 0


def test_reasoning_effort_drops_temperature_and_adds_the_budget(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, spec = openai_public(server, monkeypatch, "gpt-5.4-mini")
    answer = ask(backend, spec, reasoning="high")
    body = server.calls[0].body
    assert body["reasoning_effort"] == "high"
    assert "temperature" not in body
    assert body["max_completion_tokens"] == 1024 + 16384
    # The Chat Completions API shows no reasoning text, only its size; the guess the
    # model discarded never reaches the answer.
    assert answer.text == "The capability is 9.0"
    assert answer.reasoning is None
    assert answer.usage.reasoning_tokens == 4
    assert answer.usage.output_tokens == 4 + 4  # reasoning is part of the output


def test_always_reasoning_model_never_gets_a_temperature(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, spec = openai_public(server, monkeypatch, "gpt-5-mini")
    answer = ask(backend, spec, temperature=0.7)
    body = server.calls[0].body
    assert "temperature" not in body
    # Its default effort is medium: the answer keeps its own 1024 tokens.
    assert body["max_completion_tokens"] == 1024 + 8192
    assert answer.usage.reasoning_tokens == 4


def test_reasoning_can_use_up_the_limit_and_leave_no_answer(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, spec = openai_public(server, monkeypatch, "gpt-5.4-mini")
    answer = ask(backend, spec, reasoning="low:2", max_tokens=1)
    assert server.calls[0].body["max_completion_tokens"] == 3
    assert answer.stop_reason == "length"
    assert answer.usage.reasoning_tokens == 3
    assert answer.text == ""


def test_non_reasoning_model_gets_no_reasoning_effort(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, spec = openai_public(server, monkeypatch, "gpt-4.1-mini")
    ask(backend, spec, reasoning="high")
    body = server.calls[0].body
    assert "reasoning_effort" not in body
    assert body["temperature"] == 0
    assert body["max_completion_tokens"] == 1024


def test_the_rules_are_described_for_the_header() -> None:
    rules = parameter_rules("gpt-5.4-mini", Reasoning("high"), compatible=False)
    assert rules.describe() == (
        "max_completion_tokens (max_tokens + 16384 for reasoning), no temperature, "
        "reasoning_effort high"
    )
    assert parameter_rules("qwen3", None, compatible=True).describe() is None


# -- OpenAI: adapting once when a server refuses anyway ----------------------------------


def deployment(server: LoopbackServer) -> tuple[OpenAIBackend, ModelSpec]:
    """An Azure-style deployment: its name says nothing of the reasoning model behind it."""
    spec = parse_model_spec(f"openai:prod-deployment@{server.openai_url}")
    return OpenAIBackend(spec, OPTIONS), spec


def test_a_refused_parameter_is_adapted_once_for_the_run(server: LoopbackServer) -> None:
    backend, spec = deployment(server)
    request = request_for(spec, prompt="Which capability?")
    key = request.key
    first = backend.complete(request)

    refused = [c.body for c in server.calls[:-1]]
    assert [("max_tokens" in b, "temperature" in b) for b in refused] == [
        (True, True),  # 400 unsupported_parameter max_tokens
        (False, True),  # 400 unsupported_value temperature
    ]
    assert first.text == "The capability is 9.0"
    assert first.extra["adapted"] == (
        "the server refused max_tokens: sent max_completion_tokens instead; "
        "the server refused temperature: not sent"
    )
    assert request.key == key  # the key still says what was asked for

    before = len(server.calls)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda i: backend.complete(request_for(spec, prompt=f"q{i}")), range(8))
        )
    assert len(server.calls) == before + 8  # no call is refused again
    assert all(a.extra["adapted"] == first.extra["adapted"] for a in answers)
    assert [a.slot for a in backend.adaptations] == ["token_limit", "temperature"]


def test_concurrent_first_calls_meet_one_refusal(server: LoopbackServer) -> None:
    backend, spec = deployment(server)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: backend.complete(request_for(spec, prompt=f"q{i}")), range(8)))
    statuses = [("max_tokens" in c.body, "temperature" in c.body) for c in server.calls]
    assert statuses.count((True, True)) == 1
    assert statuses.count((False, True)) == 1
    assert len(server.calls) == 10


def test_a_refused_value_the_user_chose_is_an_error_not_a_loop(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, spec = openai_public(server, monkeypatch, "gpt-5.4-mini")
    with pytest.raises(BackendError) as info:
        ask(backend, spec, reasoning="minimal")  # gpt-5.4 has no 'minimal'
    assert "does not support 'minimal'" in info.value.message
    assert info.value.message.startswith("OpenAI 400:")
    assert not info.value.retryable
    assert len(server.calls) == 1


def test_adaptation_reads_the_parameter_from_the_message_when_param_is_missing() -> None:
    body = {"message": "Unsupported parameter: 'max_tokens' is not supported with this model."}
    adaptation = adaptation_for(body, {"max_tokens": 10})
    assert adaptation is not None and adaptation.replacement == "max_completion_tokens"
    assert (
        adaptation_for({"code": "invalid_value", "param": "max_tokens"}, {"max_tokens": 1}) is None
    )
    refused = {"code": "unsupported_value", "param": "temperature"}
    assert adaptation_for(refused, {"max_tokens": 1}) is None  # not sent: nothing to adapt


# -- OpenAI-compatible servers: inline <think> and reasoning_content ---------------------


@pytest.mark.parametrize("reasoning_format", ["inline", "deepseek"])
def test_compatible_server_reasoning_is_kept_apart(reasoning_format: str) -> None:
    with LoopbackServer(guess_then_answer, reasoning_format=reasoning_format) as srv:
        spec = parse_model_spec(f"openai:qwen3@{srv.openai_url}")
        answer = ask(OpenAIBackend(spec, OPTIONS), spec)
        message = srv.calls[0]
    assert answer.text == "The capability is 9.0"
    assert answer.reasoning == "maybe sm_80 is right"
    assert "max_tokens" in message.body and "max_completion_tokens" not in message.body


def test_reasoning_cut_by_max_tokens_leaves_no_answer() -> None:
    with LoopbackServer(guess_then_answer) as srv:
        spec = parse_model_spec(f"openai:qwen3@{srv.openai_url}")
        answer = ask(OpenAIBackend(spec, OPTIONS), spec, max_tokens=3)
    assert answer.stop_reason == "length"
    assert answer.text == ""
    assert answer.reasoning == "maybe sm_80 is"


@pytest.mark.parametrize(
    ("text", "answer", "reasoning"),
    [
        ("plain answer\n", "plain answer\n", None),
        ("<think>a guess</think>\n\nthe answer", "the answer", "a guess"),
        ("a guess</think>the answer", "the answer", "a guess"),  # template opened it
        ("<think>a guess that was cut", "", "a guess that was cut"),
        ("<think>\n\n</think>\n\nno thoughts", "no thoughts", None),
        ("<think>one</think>A<think>two</think>B", "AB", "one\n\ntwo"),
    ],
)
def test_split_reasoning(text: str, answer: str, reasoning: str | None) -> None:
    assert split_reasoning(text) == (answer, reasoning)


# -- Anthropic thinking -------------------------------------------------------------------


def anthropic(server: LoopbackServer, model: str) -> tuple[AnthropicBackend, ModelSpec]:
    spec = parse_model_spec(f"anthropic:{model}@{server.url}")
    return AnthropicBackend(spec, OPTIONS), spec


def test_thinking_model_thinks_adaptively_and_keeps_thinking_apart(
    server: LoopbackServer,
) -> None:
    backend, spec = anthropic(server, "claude-sonnet-5-5")
    answer = ask(backend, spec, reasoning="high")
    body = server.calls[0].body
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "high"}
    assert body["max_tokens"] == 1024 + 16384
    assert answer.text == "The capability is 9.0"
    assert answer.reasoning == "maybe sm_80 is right"
    assert answer.usage.reasoning_tokens == 4
    assert answer.usage.output_tokens == 4 + 4


def test_a_4_5_model_thinks_on_a_budget(server: LoopbackServer) -> None:
    backend, spec = anthropic(server, "claude-haiku-4-5")
    answer = ask(backend, spec, reasoning="minimal")
    body = server.calls[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 1024 + 1024
    assert "output_config" not in body
    assert answer.reasoning == "maybe sm_80 is right"


def test_thinking_off_and_unset(server: LoopbackServer) -> None:
    backend, spec = anthropic(server, "claude-opus-5-5")
    off = ask(backend, spec, reasoning="off")
    unset = ask(backend, spec)
    assert server.calls[0].body["thinking"] == {"type": "disabled"}
    assert "thinking" not in server.calls[1].body
    assert off.reasoning is None and unset.reasoning is None
    assert off.text == unset.text == "The capability is 9.0"


def test_the_loopback_refuses_adaptive_thinking_where_the_api_does(server: LoopbackServer) -> None:
    client = anthropic_sdk.Anthropic(api_key="test-key", base_url=server.url, max_retries=0)
    # What a backend that ignored the model's abilities would send is refused:
    params = thinking_params("claude-sonnet-5-5", Reasoning("low"), 10)
    with pytest.raises(anthropic_sdk.BadRequestError, match="adaptive"):
        client.messages.create(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "q"}], **params
        )
    budget = thinking_params("claude-haiku-4-5", Reasoning("low", 100), 10)
    assert budget["thinking"]["budget_tokens"] == 1024  # the API's minimum


def test_a_gateway_model_that_refuses_adaptive_thinking_gets_a_budget_from_then_on() -> None:
    # A gateway's name says nothing of the model behind it: here a 4.5 model, which
    # takes only thinking with budget_tokens.
    with LoopbackServer(responder=guess_then_answer, budget_thinking_models=["prod-claude"]) as srv:
        backend, spec = anthropic(srv, "prod-claude")
        first = ask(backend, spec, reasoning="high")
        assert [c.body["thinking"]["type"] for c in srv.calls] == ["adaptive", "enabled"]
        assert first.reasoning == "maybe sm_80 is right"
        assert first.extra["adapted"] == (
            "the server refused adaptive thinking: sent thinking with budget_tokens instead"
        )
        with ThreadPoolExecutor(4) as pool:
            later = list(pool.map(lambda _: ask(backend, spec, reasoning="high"), range(4)))
        assert [c.body["thinking"]["type"] for c in srv.calls[2:]] == ["enabled"] * 4
        assert all(a.extra["adapted"] == first.extra["adapted"] for a in later)


def test_a_thinking_refusal_in_both_forms_or_about_something_else_is_an_error() -> None:
    with LoopbackServer(budget_thinking_models=["prod-claude"]) as srv:
        backend, spec = anthropic(srv, "prod-claude")
        # The budget form refused as well (as a server without thinking would): one
        # switch, then the error, not a loop.
        srv.fail_next(400, message="thinking: not supported by this deployment", times=2)
        with pytest.raises(BackendError, match="thinking: not supported"):
            ask(backend, spec, reasoning="high")
        assert [c.body["thinking"]["type"] for c in srv.calls] == ["adaptive", "enabled"]
        # Another 400 is the caller's error as it stands: not retried in another form.
        srv.fail_next(400, message="messages: roles must alternate")
        with pytest.raises(BackendError, match="roles must alternate"):
            ask(backend, spec, reasoning="high")
        assert len(srv.calls) == 3
        # Without a reasoning setting a 400 is never taken for a thinking refusal.
        plain, plain_spec = anthropic(srv, "claude-haiku-4-5")
        assert ask(plain, plain_spec).extra == {}


# -- the setting through the plugin: option, ini, file defaults, case --------------------

SONNET = "anthropic:claude-sonnet-5-5"


def thinking_of(call: Call) -> tuple[str | None, str | None]:
    thinking = call.body.get("thinking")
    effort = (call.body.get("output_config") or {}).get("effort")
    return (thinking or {}).get("type"), effort


def test_a_case_and_a_file_override_the_run_setting(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(
        pytester.path,
        "pinned",
        cases_yaml="""
        defaults: {reasoning: low}
        cases:
          - id: from-defaults
            input: First question
            expect: {contains: echo}
          - id: thinking-off
            input: Second question
            reasoning: off
            expect: {contains: echo}
        """,
    )
    write_skill(pytester.path, "free")
    result = pytester.runpytest(
        "--skill-model",
        SONNET,
        "--skill-reasoning",
        "high",
        "--skill-cache=off",
        "--no-skill-baseline",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    by_prompt = {c.prompt: thinking_of(c) for c in provider_env.calls}
    assert by_prompt["First question"] == ("adaptive", "low")
    assert by_prompt["Second question"] == ("disabled", None)
    assert by_prompt["Tell me about the topic"] == ("adaptive", "high")
    result.stdout.fnmatch_lines(
        [
            "skills: reasoning high",
            f"skills: {SONNET}: sends adaptive thinking, effort high, max_tokens + 16384",
        ]
    )


def test_the_ini_setting_applies_without_the_option(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(pytester.path)
    pytester.makeini("[pytest]\nskill_reasoning = medium:2000\n")
    result = pytester.runpytest(
        "--skill-model", SONNET, "--skill-cache=off", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    assert {thinking_of(c) for c in provider_env.calls} == {("adaptive", "medium")}
    assert {c.body["max_tokens"] for c in provider_env.calls} == {1024 + 2000}


def test_bad_reasoning_in_a_case_is_a_collection_error_with_its_line(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - input: Question
            reasoning: extreme
            expect: {contains: x}
        """,
    )
    result = pytester.runpytest("--skill-model", SONNET, "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*demo.skill.yaml:3: reasoning 'extreme': expected one of none,*"])
    assert "Traceback" not in result.stdout.str()


def test_a_bad_reasoning_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--skill-reasoning", "hard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --skill-reasoning: reasoning 'hard': expected one of*"])


def test_a_failure_shows_the_reasoning_under_its_own_heading(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    provider_env.responder = lambda call: "<think>I guess sm_80 fits</think>Use sm_80."
    write_skill(
        pytester.path,
        cases_yaml="""
        cases:
          - id: h100
            input: Build for H100
            expect: {contains: "9.0"}
        """,
    )
    result = pytester.runpytest(
        "--skill-model",
        SONNET,
        "--skill-reasoning=low",
        "--skill-cache=off",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- answer with the skill -*",
            "Use sm_80.",
            "*- reasoning (not checked) -*",
            "I guess sm_80 fits",
        ]
    )


def test_the_fixture_asks_with_a_reasoning_level(
    pytester: pytest.Pytester, provider_env: LoopbackServer
) -> None:
    pytester.makepyfile(
        """
        def test_thinks(skill_model):
            answer = skill_model.ask("Which capability?", baseline=True, reasoning="xhigh")
            assert answer.response.reasoning
        """
    )
    result = pytester.runpytest(
        "--skill-model", SONNET, "--skill-cache=off", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    assert [thinking_of(c) for c in provider_env.calls] == [("adaptive", "xhigh")]
