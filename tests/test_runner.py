"""The runner: de-duplication, bounded concurrency, retries, exclusive backends, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pytest_skills.backends import BackendError, BackendOptions
from pytest_skills.backends.anthropic import AnthropicBackend
from pytest_skills.backends.openai import OpenAIBackend
from pytest_skills.execution.cache import ResponseCache
from pytest_skills.execution.runner import BACKOFF_BASE_S, Call, Runner
from pytest_skills.models import ModelSpec, Request, Response
from tests.conftest import plugin_subprocess, write_skill
from tests.loopback import Call as WireCall
from tests.loopback import LoopbackServer, echo


class InFlight:
    """A responder that records how many requests the server was serving at once."""

    def __init__(self, hold_s: float):
        self.hold_s = hold_s
        self.current = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, call: WireCall) -> str:
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        time.sleep(self.hold_s)
        with self.lock:
            self.current -= 1
        return echo(call)


def anthropic_runner(server: LoopbackServer, tmp_path: Path | None = None, **options) -> Runner:
    spec = ModelSpec("haiku", "anthropic", "claude-haiku-4-5", base_url=server.url)
    settings = BackendOptions(timeout=5.0)
    cache = ResponseCache(tmp_path / "cache") if tmp_path else None
    return Runner(
        cache=cache,
        mode="auto" if cache else "off",
        backend_factory=lambda _spec: AnthropicBackend(spec, settings),
        **options,
    )


def call(prompt: str, system: str | None = None, trial: int = 0) -> Call:
    spec = ModelSpec("haiku", "anthropic", "claude-haiku-4-5")
    request = Request("anthropic", "claude-haiku-4-5", prompt, system=system, trial=trial)
    return Call(request, spec, f"f::{prompt}")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "runner-test-key")


def test_identical_requests_are_made_once() -> None:
    with LoopbackServer() as server:
        runner = anthropic_runner(server)
        runner.submit([call("a"), call("a"), call("b"), call("a", trial=1)])
        runner.wait()
        assert sorted(c.prompt for c in server.calls) == ["a", "a", "b"]
        assert runner.outcome(call("a")).response is not None
        assert len(server.calls) == 3


def test_concurrency_is_bounded_and_used() -> None:
    responder = InFlight(hold_s=0.15)
    with LoopbackServer(responder=responder) as server:
        runner = anthropic_runner(server, concurrency=4)
        runner.submit([call(f"q{i}") for i in range(12)])
        runner.wait()
    assert runner.progress.done == 12 and runner.progress.failed == 0
    assert 1 < responder.peak <= 4


def test_rate_limits_are_retried_honouring_retry_after(tmp_path: Path) -> None:
    delays: list[float] = []
    with LoopbackServer() as server:
        server.fail_next(429, times=2, retry_after=2.5)
        runner = anthropic_runner(server, tmp_path, retries=3, sleep=delays.append)
        outcome = runner.outcome(call("hello"))
    assert outcome.ok, outcome.error
    assert delays == [2.5, 2.5]
    assert len(server.calls) == 3


def test_retry_after_zero_still_backs_off_with_jitter() -> None:
    # A server that says "retry-after: 0" under load must not get every attempt at once.
    delays: list[float] = []
    with LoopbackServer() as server:
        server.fail_next(429, times=4, retry_after=0)
        outcome = anthropic_runner(server, retries=4, sleep=delays.append).outcome(call("x"))
    assert outcome.ok, outcome.error
    assert len(delays) == 4
    for attempt, delay in enumerate(delays):
        ceiling = BACKOFF_BASE_S * 2**attempt
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
    # Jitter: many workers told the same thing do not retry in step.
    assert len({round(Runner._delay(0, 0.0), 6) for _ in range(20)}) > 1


@pytest.mark.parametrize("status", [529, 500, 503])
def test_overload_and_server_errors_are_retried_with_backoff(status: int) -> None:
    delays: list[float] = []
    with LoopbackServer() as server:
        server.fail_next(status, times=1)
        outcome = anthropic_runner(server, retries=2, sleep=delays.append).outcome(call("x"))
    assert outcome.ok, outcome.error
    assert len(delays) == 1 and BACKOFF_BASE_S / 2 <= delays[0] <= BACKOFF_BASE_S


def test_a_request_that_keeps_failing_fails_alone_and_is_not_cached(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        server.fail_next(429, times=3, retry_after=0, message="slow down please")
        runner = anthropic_runner(server, tmp_path, retries=2, sleep=lambda _s: None)
        failed = runner.outcome(call("doomed"))
        fine = runner.outcome(call("fine"))
    assert not failed.ok
    assert "429" in (failed.error or "") and "slow down please" in (failed.error or "")
    assert "after 3 attempts" in (failed.error or "")
    assert fine.ok
    assert len(ResponseCache(tmp_path / "cache").keys()) == 1


def test_client_errors_are_not_retried() -> None:
    with LoopbackServer() as server:
        server.fail_next(400, message="max_tokens: too large")
        outcome = anthropic_runner(server, retries=5, sleep=lambda _s: None).outcome(call("x"))
        assert len(server.calls) == 1
    assert outcome.error is not None and "max_tokens: too large" in outcome.error


def test_missing_backend_fails_every_call_of_that_model() -> None:
    def factory(spec: ModelSpec) -> OpenAIBackend:
        raise BackendError(f"no way to reach {spec.name}")

    runner = Runner(cache=None, mode="off", backend_factory=factory)
    outcomes = [runner.outcome(call(p)) for p in ("a", "b")]
    assert [o.error for o in outcomes] == ["no way to reach haiku"] * 2


class LocalModel:
    """An exclusive backend: it must never see two calls at once."""

    exclusive = True

    def __init__(self) -> None:
        self.busy = threading.Lock()
        self.order: list[tuple[str | None, str]] = []

    def complete(self, request: Request) -> Response:
        if not self.busy.acquire(blocking=False):
            raise AssertionError("an exclusive backend was called concurrently")
        try:
            time.sleep(0.01)
            self.order.append((request.system, request.prompt))
            return Response(text="local")
        finally:
            self.busy.release()


def test_exclusive_backends_run_one_at_a_time_grouped_by_skill() -> None:
    local = LocalModel()
    runner = Runner(cache=None, mode="off", backend_factory=lambda _s: local, concurrency=8)
    calls = [call(f"q{i}", system=system) for i in range(4) for system in ("S1", None, "S2")]
    runner.submit(calls)
    runner.wait()
    assert runner.progress.failed == 0
    systems = [system for system, _ in local.order]
    # Consecutive calls share the skill prefix: each skill's calls form one run.
    runs = [s for i, s in enumerate(systems) if i == 0 or systems[i - 1] != s]
    assert sorted(runs, key=str) == sorted(["S1", "S2", None], key=str)


def test_ctrl_c_does_not_wait_for_a_call_in_flight_and_keeps_finished_answers(
    pytester: pytest.Pytester,
    tmp_path: Path,
) -> None:
    cases = "\n".join(
        f"  - {{id: c{i}, input: question {i}, expect: {{contains: echo}}}}" for i in range(6)
    )
    write_skill(pytester.path, cases_yaml="cases:\n" + cases + "\n")
    cache = tmp_path / "cache"
    first_answered = threading.Event()
    # The second call is held until the process has ended: if Ctrl-C waited for the
    # call in flight, the run would never end (and the guard below would say so).
    process_ended = threading.Event()

    def responder(wire: WireCall) -> str:
        if first_answered.is_set():
            process_ended.wait()
        first_answered.set()
        return echo(wire)

    with LoopbackServer(responder=responder) as server:
        command, env = plugin_subprocess(
            server, pytester.path, f"--skill-cache-dir={cache}", "--skill-concurrency=1"
        )
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            while len(server.calls) < 2 and process.poll() is None:
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            # A hang guard, not a speed limit: the run ends without the held call.
            output, _ = process.communicate(timeout=600)
        finally:
            process_ended.set()
            if process.poll() is None:
                process.kill()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert len(ResponseCache(cache).keys()) == 1


def test_the_calls_line_is_said_once_on_a_terminal(pytester: pytest.Pytester) -> None:
    # Calls are made while the items run, so pytest's own progress shows them advancing;
    # the skills section says once what they came to.
    import pty

    write_skill(pytester.path)
    with LoopbackServer(latency=0.3) as server:
        command, env = plugin_subprocess(
            server, pytester.path, "--skill-cache=off", "--skill-concurrency=1"
        )
        primary, secondary = pty.openpty()
        process = subprocess.Popen(command, env=env, stdout=secondary, stderr=secondary)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=600)  # a hang guard, not a speed limit
        os.close(primary)
    output = b"".join(chunks).decode(errors="replace")
    assert output.count("skills: 4 calls: 4 live, 0 from the cache, 0 failed") == 1, output
