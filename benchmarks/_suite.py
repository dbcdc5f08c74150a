"""Shared helpers for the benchmark scripts: build a throwaway skill suite, time pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


#: Runs pytest, then writes this process's peak resident memory (kB) to a file. Read
#: from /proc in the child itself: ``ru_maxrss`` of a child also counts the memory of
#: the parent that spawned it, which would inflate small runs after large ones.
_PEAK_REPORTER = """
import os, sys, pytest
code = pytest.main(sys.argv[1:])
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
with open(os.environ["BENCH_PEAK_FILE"], "w") as handle:
    handle.write(status["VmHWM"].split()[0])
sys.exit(int(code))
"""


def measured_pytest(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Wall time (s) and peak resident memory (MB) of one pytest process, which must pass."""
    with tempfile.NamedTemporaryFile(suffix=".peak") as peak:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _PEAK_REPORTER, "-q", "-p", "no:cacheprovider", *args],
            cwd=cwd,
            env={**os.environ, **(env or {}), "BENCH_PEAK_FILE": peak.name},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"pytest {' '.join(args)} failed (exit status {result.returncode})")
        return elapsed, int(Path(peak.name).read_text()) / 1024


def bytecode_note() -> str | None:
    """A line to print when Python writes no bytecode: every run then compiles every
    module again, and pytest rewrites the plugin's, which start-up figures include."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return (
            "  note: PYTHONDONTWRITEBYTECODE is set: modules are compiled on every run "
            "(unset it for the figures users see)"
        )
    return None
