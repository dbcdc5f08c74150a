"""Shared helpers for the benchmark scripts: build a throwaway skill suite, time pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SKILL_MD = """\
---
name: bench
description: A skill used to time the runner.
---
Answer briefly and mention the benchmark.
"""


def write_suite(directory: Path, cases: int) -> Path:
    skill = directory / "bench"
    skill.mkdir(parents=True, exist_ok=True)
    (skill / "SKILL.md").write_text(SKILL_MD)
    lines = ["cases:"]
    lines += [
        f"  - {{id: c{i}, input: question {i}, expect: {{contains: echo}}}}" for i in range(cases)
    ]
    (skill / "bench.skill.yaml").write_text("\n".join(lines) + "\n")
    return skill


def timed_pytest(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall time of one pytest process; fails loudly if the run did not pass."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"pytest failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return elapsed
