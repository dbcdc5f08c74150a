"""Cost at scale: a 10,000-item replay, and live runs of 1,000 and 20,000 calls.

Replay: 10,000 cached skill items (20,000 answers: with skill and baseline) against
10,000 plain parametrised tests, each a fresh pytest process; wall time and peak
resident memory, median of REPEATS. Goals: at most 1.3x the time, 1.5x the memory.

Live: pytest-skills records every answer (auto mode, concurrency 16) from a loopback
provider that answers at once, for 500 and for 10,000 cases (1,000 and 20,000 calls).
Time per call should not grow with the number of calls (ideal ratio 1.0x). The
provider's own throughput is the baseline: a plain client of the same SDK, with the
same concurrency, in a process of its own.

    python benchmarks/bench_scale.py [--items 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _suite import measured_pytest, write_suite

from tests.loopback import LoopbackServer

MODEL = "anthropic:claude-haiku-4-5"
CONCURRENCY = 16
TIME_GOAL, MEMORY_GOAL = 1.3, 1.5

PLAIN_TESTS = """
import pytest

@pytest.mark.parametrize("case", range({items}))
def test_case(case):
    answer = "echo: question " + str(case)
    assert "echo" in answer.lower()
"""

#: The provider's throughput as a plain SDK client sees it: the same requests, threads.
SDK_CLIENT = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
import anthropic
client = anthropic.Anthropic(api_key="bench-key-000", base_url=sys.argv[1], max_retries=0)
def ask(i):
    client.messages.create(model="claude-haiku-4-5", max_tokens=1024,
                           messages=[{"role": "user", "content": f"question {i}"}])
calls = int(sys.argv[2])
started = time.perf_counter()
with ThreadPoolExecutor(int(sys.argv[3])) as pool:
    list(pool.map(ask, range(calls)))
print(calls / (time.perf_counter() - started))
"""


def provider_env(server: LoopbackServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "bench-key-000", "ANTHROPIC_BASE_URL": server.url, "CI": ""}


def live_run(root: Path, cases: int) -> tuple[float, int]:
    """Seconds to record every answer of ``cases`` cases; the number of calls made."""
    suite = root / f"live-{cases}"
    write_suite(suite, cases)
    cache = root / f"cache-{cases}"
    with LoopbackServer() as server:
        seconds, _ = measured_pytest(
            [
                "--skill-model",
                MODEL,
                f"--skill-cache-dir={cache}",
                f"--skill-concurrency={CONCURRENCY}",
                str(suite),
            ],
            root,
            provider_env(server),
        )
        return seconds, len(server.calls)


def sdk_throughput(calls: int) -> float:
    with LoopbackServer() as server:
        result = subprocess.run(
            [sys.executable, "-c", SDK_CLIENT, server.url, str(calls), str(CONCURRENCY)],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(result.stdout)


def replay(root: Path, items: int, repeats: int) -> None:
    skills = root / "skills"
    write_suite(skills, items)
    cache = root / "replay-cache"
    model_args = ["--skill-model", MODEL, f"--skill-cache-dir={cache}"]
    with LoopbackServer() as server:
        measured_pytest(
            [*model_args, f"--skill-concurrency={CONCURRENCY}", str(skills)],
            root,
            provider_env(server),
        )
    plain = root / "plain"
    plain.mkdir()
    (plain / "test_plain.py").write_text(PLAIN_TESTS.format(items=items))
    plain_runs, replay_runs = [], []
    for _ in range(repeats):
        plain_runs.append(measured_pytest([str(plain)], root, {"CI": "true"}))
        replay_runs.append(measured_pytest([*model_args, str(skills)], root, {"CI": "true"}))
    plain_s = statistics.median(run[0] for run in plain_runs)
    replay_s = statistics.median(run[0] for run in replay_runs)
    plain_mb = statistics.median(run[1] for run in plain_runs)
    replay_mb = statistics.median(run[1] for run in replay_runs)
    print(f"replay: {items:,} items ({2 * items:,} cached answers), median of {repeats} runs")
    print(f"  plain parametrised tests:  {plain_s:6.2f} s  {plain_mb:6.0f} MB peak")
    print(f"  replayed skill items:      {replay_s:6.2f} s  {replay_mb:6.0f} MB peak")
    print(
        f"  ratio:                     {replay_s / plain_s:6.2f}x {replay_mb / plain_mb:6.2f}x"
        f"     (goals <= {TIME_GOAL}x, <= {MEMORY_GOAL}x)"
    )


def live(root: Path, items: int) -> None:
    small_cases = max(items // 20, 1)
    small_s, small_calls = live_run(root, small_cases)
    large_s, large_calls = live_run(root, items)
    sdk = sdk_throughput(min(large_calls, 5000))
    small_rate, large_rate = small_calls / small_s, large_calls / large_s
    print(f"live: recording against a loopback provider with no latency, concurrency {CONCURRENCY}")
    print(f"  provider, plain SDK client:    {sdk:7.0f} calls/s")
    print(
        f"  pytest-skills, {small_calls:6,} calls:   {small_rate:7.0f} calls/s  ({small_s:.1f} s)"
    )
    print(
        f"  pytest-skills, {large_calls:6,} calls:   {large_rate:7.0f} calls/s  ({large_s:.1f} s)"
    )
    print(
        f"  time per call, {large_calls:,} vs {small_calls:,}: "
        f"{small_rate / large_rate:6.2f}x (ideal 1.0x)"
    )
    print(f"  provider throughput reached:   {large_rate / sdk:6.2f}x (ideal 1.0x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        replay(root, options.items, options.repeats)
        live(root, options.items)
    print(f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
