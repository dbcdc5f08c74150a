"""How long building llama-cpp-python takes, with and without the README's build options.

Builds the installed version's wheel from source twice, one after the other, in fresh
temporary directories (no pip cache): once with llama.cpp's defaults (a build tuned to
this CPU, with the multimodal library) and once with the options the README's set-up
commands pass in CMAKE_ARGS. Prints both wall times and their ratio.

    python benchmarks/bench_llama_build.py
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import time

README_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
)


def build_seconds(cmake_args: str | None, version: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "CMAKE_ARGS"}
    if cmake_args:
        env["CMAKE_ARGS"] = cmake_args
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-cache-dir",
                "--wheel-dir",
                out,
                f"llama-cpp-python=={version}",
            ],
            env=env,
            check=True,
        )
        return time.perf_counter() - started


def main() -> None:
    version = importlib.metadata.version("llama_cpp_python")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"llama-cpp-python {version} from source, {cores} cores")
    default = build_seconds(None, version)
    print(f"  llama.cpp defaults:        {default:6.0f} s")
    ours = build_seconds(README_CMAKE_ARGS, version)
    print(f"  the README's CMAKE_ARGS:   {ours:6.0f} s")
    print(f"  ratio:                     {ours / default:6.2f}x")


if __name__ == "__main__":
    main()
