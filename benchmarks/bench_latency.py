"""How much wall time does provider latency add to a run of 96 calls?

48 cases x (with skill, baseline) = 96 calls against a loopback provider answering
after 250 ms, with --skill-concurrency 16. The ideal is 96 x 0.25 s / 16 = 1.5 s. The
same run with no latency is the baseline; the difference is what latency adds.
Goal: at most 1.5x the ideal.

    python benchmarks/bench_latency.py
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from _suite import timed_pytest, write_suite

from tests.loopback import LoopbackServer

CASES, LATENCY_S, CONCURRENCY, REPEATS = 48, 0.25, 16, 3
IDEAL_S = CASES * 2 * LATENCY_S / CONCURRENCY


def run_once(directory: Path, latency: float) -> float:
    with LoopbackServer(latency=latency) as server:
        env = {"ANTHROPIC_API_KEY": "bench-key-000", "ANTHROPIC_BASE_URL": server.url, "CI": ""}
        elapsed = timed_pytest(
            [
                "--skill-model",
                "anthropic:claude-haiku-4-5",
                "--skill-cache=off",
                f"--skill-concurrency={CONCURRENCY}",
                str(directory),
            ],
            directory,
            env,
        )
        assert len(server.calls) == CASES * 2, len(server.calls)
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_suite(directory, CASES)
        fast = statistics.median(run_once(directory, 0.0) for _ in range(REPEATS))
        slow = statistics.median(run_once(directory, LATENCY_S) for _ in range(REPEATS))
    added = slow - fast
    print(f"{CASES * 2} calls, {LATENCY_S * 1000:.0f} ms latency, concurrency {CONCURRENCY}")
    print(f"  run with no latency (baseline): {fast:6.2f} s")
    print(f"  run with latency:               {slow:6.2f} s")
    print(f"  latency added:                  {added:6.2f} s  (ideal {IDEAL_S:.2f} s)")
    print(f"  ratio to ideal:                 {added / IDEAL_S:6.2f}x  (goal <= 1.5x)")


if __name__ == "__main__":
    main()
