"""What installing pytest-skills costs every pytest run of a project, skill tests or not.

A trivial one-test file is run as a fresh pytest process with the plugin loaded and with
``-p no:skills``, interleaved, nine times each; the script prints the medians, their
difference (the plugin's start-up cost) and their ratio. Goal: at most 0.15 s added.

    python benchmarks/bench_startup.py
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from _suite import bytecode_note, timed_pytest

REPEATS = 9
TRIVIAL = "def test_nothing():\n    assert True\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_trivial.py").write_text(TRIVIAL)
        timed_pytest(["test_trivial.py"], root)  # warm the file system and .pyc caches
        with_plugin, without = [], []
        for _ in range(REPEATS):
            with_plugin.append(timed_pytest(["test_trivial.py"], root))
            without.append(timed_pytest(["-p", "no:skills", "test_trivial.py"], root))
    plugin, bare = statistics.median(with_plugin), statistics.median(without)
    print(f"trivial pytest run, median of {REPEATS}:")
    print(f"  with pytest-skills     {plugin:.3f} s")
    print(f"  with -p no:skills      {bare:.3f} s")
    print(f"  added by the plugin    {plugin - bare:+.3f} s ({plugin / bare:.2f}x)")
    note = bytecode_note()
    if note:
        print(note)


if __name__ == "__main__":
    main()
