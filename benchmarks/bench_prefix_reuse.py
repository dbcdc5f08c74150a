"""How much a skill costs per case on a local model, with and without KV prefix reuse.

Runs Gemma 3 270M (the bundled demo model) through the real ``LlamaCppBackend``:

1. baseline: N short questions, no skill;
2. with skill: the same N questions, each after the same ~500-token SKILL.md text,
   one after another, so llama.cpp keeps the skill's KV cache and evaluates only
   the question (the first call pays for the skill once);
3. with skill, reuse defeated: the same, but the model state is reset before each call
   (``--defeat alternate`` instead interleaves a different long prefix, as two skills
   taking turns would), so the whole skill is evaluated every time.

Goal: with-skill time per case at most 1.3x the baseline's.

    python benchmarks/bench_prefix_reuse.py [--cases 8] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_skills.backends.gguf import DEMO_MODEL_NAME
from pytest_skills.backends.llama_cpp import LlamaCppBackend
from pytest_skills.models import ModelSpec, Request, Response, Sampling, Usage
from pytest_skills.settings import Settings

GOAL = 1.3

SKILL = """\
# kernel-builder

Use this skill whenever the user asks for a build.toml, a kernel manifest or the
build settings of a custom CUDA, ROCm or Metal kernel for the kernel hub.

## The build.toml file

Every kernel repository has one build.toml at its root. It has a [general] table
with the kernel's `name` (lower case, hyphens allowed) and a [torch] table that
lists the C++ sources of the PyTorch bindings, usually `torch-ext/torch_binding.cpp`
and `torch-ext/torch_binding.h`. Each kernel has its own [kernel.NAME] table with
`backend` ("cuda", "rocm" or "metal"), `src` (the list of source files, headers
included) and `depends` (for example ["torch", "cutlass_3_8"]).

## Compute capabilities

For CUDA kernels, `cuda-capabilities` lists the architectures to build for, as
strings with a dot: H100 and H200 are "9.0", A100 is "8.0", A10 and RTX 30xx are
"8.6", L4, L40 and RTX 40xx are "8.9", B200 is "10.0", T4 is "7.5". Never write
sm_90, compute_90 or 90: the builder rejects them. When the user names a GPU, list
exactly its capability; when the kernel uses wgmma or TMA, it needs "9.0" and
nothing older. Leave the key out to build for every capability the toolkit knows.

## Sources

Keep CUDA sources under a directory named after the kernel, e.g.
`activation/activation_kernels.cu`. Headers go in `src` too, so that the builder
tracks them. Do not list the torch binding files under a kernel; they belong to
[torch]. Python code lives in `torch-ext/NAME/__init__.py` and imports the ops
module that the builder generates, `from ._ops import ops`.

## Checks before answering

1. The [general] name matches the directory and the Python package name.
2. Every file in `src` exists and has the right extension (.cu, .cuh, .h, .cpp).
3. Capabilities are quoted strings with a dot.
4. ROCm kernels use `rocm-archs` (e.g. ["gfx942"]) instead of capabilities.
5. Metal kernels need macOS and list .metal and .mm files.

## Answer format

Answer with the complete build.toml in one fenced toml block, then one sentence per
choice you made that the user did not ask for. Do not explain TOML syntax. If the
user's GPU is unknown, ask which GPU they target instead of guessing.
"""

#: A different prefix of similar length, to interleave when defeating reuse.
OTHER_SKILL = SKILL.replace("kernel", "widget").replace("CUDA", "GTK").replace("GPU", "app")

QUESTIONS = (
    "Which capability string is the H100?",
    "What goes in the [torch] table?",
    "Write the capability list for an A100.",
    "Where do CUDA headers go?",
    "How do I target an L4 GPU?",
    "What is the backend for a ROCm kernel?",
    "Which file imports the ops module?",
    "Is sm_90 a valid capability?",
    "What does a Metal kernel list in src?",
    "Should I list torch_binding.cpp under a kernel?",
    "What capability does a T4 have?",
    "What is in the [general] table?",
)


@dataclass
class Run:
    """One condition: per case, the responses of every round (the same prompt each time)."""

    label: str
    rounds: list[list[Response]]

    def latency(self, case: int) -> float:
        # Median over rounds: a 2-core machine shared with other work has spikes.
        return statistics.median(r[case].latency_s for r in self.rounds)

    def mean(self, cases: Sequence[int]) -> float:
        return statistics.fmean(self.latency(i) for i in cases)

    def usage(self, case: int) -> Usage:
        return self.rounds[0][case].usage  # greedy and same order: identical every round

    def column(self, attribute: str) -> float:
        return statistics.fmean(
            getattr(self.usage(i), attribute) for i in range(len(self.rounds[0]))
        )


def ask(backend: LlamaCppBackend, question: str, system: str | None, max_tokens: int) -> Response:
    return backend.complete(
        Request(
            provider="gguf",
            model=DEMO_MODEL_NAME,
            prompt=question,
            system=system,
            sampling=Sampling(temperature=0.0, max_tokens=max_tokens),
            prompt_format="auto",
        )
    )


def run(
    questions: Sequence[str],
    call: Callable[[str], Response],
    before_each: Callable[[], None] = lambda: None,
) -> list[Response]:
    responses = []
    for question in questions:
        before_each()  # not timed: latency_s covers the model call alone
        responses.append(call(question))
    return responses


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8, help="questions per condition")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are shown")
    parser.add_argument("--max-tokens", type=int, default=16, help="answer budget per call")
    parser.add_argument(
        "--defeat",
        choices=("reset", "alternate"),
        default="reset",
        help="how to defeat prefix reuse for the contrast run",
    )
    args = parser.parse_args(argv)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.cases)]

    spec = ModelSpec(name="gemma3-270m", provider="gguf", model=DEMO_MODEL_NAME)
    started = time.perf_counter()
    backend = LlamaCppBackend.shared(spec, Settings())
    llama = backend.llama
    print(f"model: {backend.path} (loaded in {time.perf_counter() - started:.2f} s)")
    skill_tokens = len(llama.tokenize(SKILL.encode("utf-8")))
    print(
        f"skill: {skill_tokens} tokens; {args.cases} cases per condition, "
        f"max_tokens {args.max_tokens}, greedy; threads {llama.n_threads}\n"
    )

    def with_skill(question: str) -> Response:
        return ask(backend, question, SKILL, args.max_tokens)

    def defeat() -> None:
        if args.defeat == "reset":
            llama.reset()  # forget the evaluated tokens: the next call starts from zero
        else:
            ask(backend, "Hello?", OTHER_SKILL, 1)  # another long prefix takes the cache

    ask(backend, "Warm-up question?", None, args.max_tokens)  # page in the weights
    runs = [
        Run("baseline", []),
        Run("with skill", []),
        Run(f"skill, no reuse ({args.defeat})", []),
    ]
    for _ in range(args.rounds):
        # Each round starts with the baseline, whose prompts share nothing with the
        # skill, so every round's first with-skill call pays for the skill again.
        runs[0].rounds.append(run(questions, lambda q: ask(backend, q, None, args.max_tokens)))
        runs[1].rounds.append(run(questions, with_skill))
        runs[2].rounds.append(run(questions, with_skill, before_each=defeat))
    report(questions, runs)
    return 0


def report(questions: Sequence[str], runs: Sequence[Run]) -> None:
    baseline, reused, defeated = runs
    print(f"median of {len(baseline.rounds)} rounds per case, milliseconds\n")
    print(f"{'case':<40} {'baseline':>13} {'with skill':>26} {'no reuse':>9}")
    print(f"{'':<40} {'ms (output)':>13} {'ms (computed/reused)':>26} {'ms':>9}")
    for i, question in enumerate(questions):
        b, s = baseline.usage(i), reused.usage(i)
        print(
            f"{question[:39]:<40} {baseline.latency(i) * 1e3:8.0f} ({b.output_tokens:2d})"
            f" {reused.latency(i) * 1e3:15.0f} ({s.input_tokens:3d}/{s.cache_read_tokens:3d})"
            f" {defeated.latency(i) * 1e3:9.0f}"
        )
    print()
    for item in runs:
        print(
            f"{item.label:<28} prompt tokens computed {item.column('input_tokens'):6.1f}, "
            f"reused {item.column('cache_read_tokens'):6.1f}, "
            f"output {item.column('output_tokens'):5.1f} per case"
        )
    every, later = range(len(questions)), range(1, len(questions))
    print()
    for title, cases in (("all cases", every), ("cases 2..N (skill already cached)", later)):
        base, skill, cold = (run.mean(cases) for run in runs)
        ratio = skill / base
        print(
            f"{title}: baseline {base * 1e3:.0f} ms/case, with skill {skill * 1e3:.0f} ms/case "
            f"= {ratio:.2f}x (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'}); "
            f"without reuse {cold * 1e3:.0f} ms/case = {cold / base:.2f}x"
        )


if __name__ == "__main__":
    sys.exit(main())
