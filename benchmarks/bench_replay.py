"""Replaying 2,000 cached skill items against 2,000 plain parametrised pytest tests.

Both run as fresh pytest processes on this machine, in the same script. The skill run
replays every answer (with skill and baseline: 4,000 cache reads) from a cache that
a first, recorded run filled. Goal: at most 1.5x the plain tests' wall time.

    python benchmarks/bench_replay.py
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from _suite import bytecode_note, timed_pytest, write_suite

from tests.loopback import LoopbackServer

ITEMS, REPEATS = 2000, 5

PLAIN_TESTS = f"""
import pytest

@pytest.mark.parametrize("case", range({ITEMS}))
def test_case(case):
    answer = "echo: question " + str(case)
    assert "echo" in answer.lower()
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        skills = root / "skills"
        write_suite(skills, ITEMS)
        cache = root / "cache"
        model_args = ["--skill-model", "anthropic:claude-haiku-4-5", f"--skill-cache-dir={cache}"]
        with LoopbackServer() as server:
            env = {"ANTHROPIC_API_KEY": "bench-key-000", "ANTHROPIC_BASE_URL": server.url, "CI": ""}
            timed_pytest([*model_args, "--skill-concurrency=16", str(skills)], root, env)
        plain = root / "plain"
        plain.mkdir()
        (plain / "test_plain.py").write_text(PLAIN_TESTS)

        replay_times, plain_times = [], []
        for _ in range(REPEATS):
            plain_times.append(timed_pytest([str(plain)], root))
            replay_times.append(
                timed_pytest(
                    [*model_args, "--skill-cache=replay", str(skills)], root, {"CI": "true"}
                )
            )
    plain_s, replay_s = statistics.median(plain_times), statistics.median(replay_times)
    print(f"{ITEMS} items, median of {REPEATS} runs each")
    print(f"  plain parametrised tests:  {plain_s:6.2f} s")
    print(f"  replayed skill items:      {replay_s:6.2f} s  ({ITEMS * 2} cached answers)")
    print(f"  ratio:                     {replay_s / plain_s:6.2f}x  (goal <= 1.5x)")
    note = bytecode_note()
    if note:
        print(note)


if __name__ == "__main__":
    main()
