"""Every option, declared once: its command-line flag, ini key, environment variable,
help text and parser all come from one :class:`Option`.

``settings.py`` registers them with pytest and resolves them into a ``Settings``; the
docs' option table is checked against :data:`OPTIONS` (tests/test_options.py). No
pytest import here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pytest_skills.errors import SkillsError


class Kind(Enum):
    """How an option is written: one value, a switch, lines, paths."""

    TEXT = "text"
    NUMBER = "number"
    FLAG = "flag"
    LINES = "lines"
    PATHS = "paths"

    @property
    def ini_type(self) -> str:
        """The type pytest reads the ini value as (switches and numbers are parsed here)."""
        return {Kind.LINES: "linelist", Kind.PATHS: "paths"}.get(self, "string")


class OptionError(SkillsError, ValueError):
    """A value an option cannot take; the message says what it takes."""


@dataclass(frozen=True)
class Option:
    #: The ``Settings`` field it sets (or, for actions, the name pytest stores it under).
    name: str
    help: str
    flag: str | None = None
    ini: str | None = None
    kind: Kind = Kind.TEXT
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    #: An environment variable read between the command line and the ini file.
    env: str | None = None
    #: Turns the text (command line, environment or ini) into the setting's value.
    parse: Callable[[Any], Any] | None = None
    #: Why there is no ini key, when there is none.
    no_ini: str | None = None
    #: Repeatable on the command line.
    repeat: bool = False
    #: A path given on the command line is the shell's; in the ini file, the rootdir's.
    #: Some paths belong to the project wherever they are given.
    project_path: bool = False
    #: The value of a flag given without one (its value is then optional: ``[DIR]``).
    bare_value: str | None = None
    #: How many values the flag takes, as argparse says it (``"+"``: one or more).
    nargs: str | None = None

    @property
    def dest(self) -> str:
        return self.name if self.flag is None else self.flag.lstrip("-").replace("-", "_")

    @property
    def sources(self) -> str:
        """Where it can be set, for the docs and ``--help``."""
        parts = [f"`{self.flag}`" if self.flag else "", f"ini `{self.ini}`" if self.ini else ""]
        if self.env:
            parts.append(f"env `{self.env}`")
        return ", ".join(part for part in parts if part)


def whole(minimum: int) -> Callable[[Any], int]:
    def parse(text: Any) -> int:
        try:
            number = int(str(text).strip())
        except ValueError:
            raise OptionError(f"expected a whole number, got {text!r}") from None
        if number < minimum:
            raise OptionError(f"must be at least {minimum}, got {number}")
        return number

    return parse


def positive_seconds(text: Any) -> float:
    try:
        number = float(str(text).strip())
    except ValueError:
        raise OptionError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise OptionError("expected a positive number of seconds")
    return number


def fraction(text: Any) -> float:
    try:
        number = float(str(text).strip())
    except ValueError:
        raise OptionError(f"expected a fraction in (0, 1], got {text!r}") from None
    if not 0.0 < number <= 1.0:
        raise OptionError("expected a fraction in (0, 1]")
    return number


def dollars(text: Any) -> float:
    try:
        number = float(str(text).strip().lstrip("$"))
    except ValueError:
        raise OptionError(f"expected an amount of dollars, got {text!r}") from None
    if not math.isfinite(number) or number < 0:
        raise OptionError("expected an amount of dollars, 0 or more")
    return number


AUTO_TRIALS_START, AUTO_TRIALS_MAX = 2, 10


def trials_or_auto(text: Any) -> tuple[int, int | None]:
    """``N`` as ``(N, None)``; ``auto[:MAX]`` as ``(2, MAX)``."""
    value = str(text).strip()
    head, colon, tail = value.partition(":")
    if head == "auto":
        most = whole(AUTO_TRIALS_START + 1)(tail) if colon else AUTO_TRIALS_MAX
        return AUTO_TRIALS_START, most
    return whole(1)(value), None


def truthy(text: Any) -> bool:
    if text is None or isinstance(text, bool):
        return bool(text)
    return str(text).strip().lower() not in {"", "0", "false", "no", "off"}


def min_lift(text: Any) -> tuple[float, bool]:
    value, _, form = str(text).partition(":")
    try:
        points = float(value)
    except ValueError:
        raise OptionError(f"{text!r}: expected points, e.g. 10 or 10:ci") from None
    if not math.isfinite(points) or form not in ("", "ci"):
        raise OptionError(f"{text!r}: expected points, e.g. 10, or POINTS:ci")
    return points, form == "ci"


def choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(text: Any) -> str:
        value = str(text).strip()
        if value not in choices:
            raise OptionError(f"{value!r}: choose one of {', '.join(choices)}")
        return value

    return parse


CACHE_MODES = ("auto", "replay", "refresh", "off")
MULTIPLICITY = ("holm", "bh", "none")
SANDBOX_MODES = ("auto", "bwrap", "none")

OPTIONS: tuple[Option, ...] = (
    Option(
        "models",
        "model to run skill cases on: alias (haiku, gemma3-270m) or provider:name[@base_url]; "
        "repeatable. Keys come from ANTHROPIC_API_KEY / OPENAI_API_KEY, servers from "
        "ANTHROPIC_BASE_URL / OPENAI_BASE_URL",
        flag="--skill-model",
        ini="skill_models",
        kind=Kind.LINES,
        metavar="SPEC",
        repeat=True,
    ),
    Option(
        "model_aliases",
        "extra model aliases, one 'alias = spec' per line",
        ini="skill_model_aliases",
        kind=Kind.LINES,
    ),
    Option(
        "skill_models_list",
        "list the model aliases (built in and from ini skill_model_aliases) with what each "
        "resolves to, and the GGUF directories searched, then exit",
        flag="--skill-models-list",
        kind=Kind.FLAG,
        no_ini="an action that prints and exits, not a setting of runs",
    ),
    Option(
        "baseline",
        "run the baseline (without-skill) calls; --no-skill-baseline skips them and no lift "
        "is reported",
        flag="--no-skill-baseline",
        ini="skill_baseline",
        kind=Kind.FLAG,
    ),
    Option(
        "arms",
        "the arms every case runs in, comma-separated: skill, baseline, placebo, ref:GITREF "
        "(the skill at a git ref), dir:PATH (another version's directory)",
        flag="--skill-arms",
        ini="skill_arms",
        metavar="ARMS",
    ),
    Option(
        "compare",
        "compare the skill with its version at a git ref: short for --skill-arms "
        "skill,ref:REF (plus the other arms named)",
        flag="--skill-compare",
        ini="skill_compare",
        metavar="REF",
    ),
    Option(
        "fail_on_regression",
        "fail the session when the skill arm is worse than the version it is compared with "
        "(ref: or dir: arms, else the baseline): a case that passed there fails here, or "
        "the comparison's verdict is hurts",
        flag="--skill-fail-on-regression",
        ini="skill_fail_on_regression",
        kind=Kind.FLAG,
    ),
    Option(
        "aa",
        "an A/A control: run the skill arm a second time (the aa arm, other trial indices) "
        "and report how often the suite's own rule calls a difference between the two",
        flag="--skill-aa",
        ini="skill_aa",
        kind=Kind.FLAG,
    ),
    Option(
        "multiplicity",
        "how the p-values of all comparisons of a run are adjusted before the verdicts: "
        "holm (family-wise error), bh (false discovery rate), none",
        flag="--skill-multiplicity",
        ini="skill_multiplicity",
        choices=MULTIPLICITY,
        parse=choice(MULTIPLICITY),
    ),
    Option(
        "plan",
        "make no call: print per model the smallest lift the suite can detect, the cases a "
        "+15pp lift needs, and the calls, tokens and dollars the live run will cost",
        flag="--skill-plan",
        kind=Kind.FLAG,
        no_ini="an action that prints a plan instead of running, not a setting of runs",
    ),
    Option(
        "max_cost",
        "refuse to start a live run whose estimated cost is above USD dollars",
        flag="--skill-max-cost",
        ini="skill_max_cost",
        kind=Kind.NUMBER,
        metavar="USD",
        parse=dollars,
    ),
    Option(
        "cache_mode",
        "response cache mode: auto (default), replay (the default when the environment "
        "variable CI is truthy, as on CI services), refresh, off",
        flag="--skill-cache",
        ini="skill_cache",
        choices=CACHE_MODES,
        parse=choice(CACHE_MODES),
        env="CI",
    ),
    Option(
        "cache_dir",
        "response cache directory (default: .skill-cache under the rootdir; relative paths "
        "are the rootdir's)",
        flag="--skill-cache-dir",
        ini="skill_cache_dir",
        metavar="DIR",
        project_path=True,
    ),
    Option(
        "cache_prune",
        "after a run of the whole suite, delete cache entries that no item used",
        flag="--skill-cache-prune",
        ini="skill_cache_prune",
        kind=Kind.FLAG,
    ),
    Option(
        "batch",
        "send the calls the cache cannot answer as one provider batch per model (Anthropic "
        "Message Batches, OpenAI Batch API: half the price, answered within 24 hours); items "
        "whose answers are pending are skipped, and a later run collects them",
        flag="--skill-batch",
        ini="skill_batch",
        kind=Kind.FLAG,
    ),
    Option(
        "batch_wait",
        "with --skill-batch: wait for this run's batches to end, polling, then grade",
        flag="--skill-batch-wait",
        ini="skill_batch_wait",
        kind=Kind.FLAG,
    ),
    Option(
        "batch_poll",
        "seconds between two looks at a pending batch (--skill-batch-wait)",
        flag="--skill-batch-poll",
        ini="skill_batch_poll",
        kind=Kind.NUMBER,
        metavar="SECONDS",
        parse=positive_seconds,
    ),
    Option(
        "batch_export",
        "write the calls the cache cannot answer as one OpenAI batch file (JSONL, the input "
        "of vLLM's run-batch) per model, then exit",
        flag="--skill-batch-export",
        metavar="DIR",
        no_ini="an action that writes files and exits, not a setting of runs",
    ),
    Option(
        "batch_import",
        "record the answers of OpenAI batch output files (vLLM's run-batch -o) in the cache "
        "for the requests --skill-batch-export wrote, then exit",
        flag="--skill-batch-import",
        metavar="FILE",
        repeat=True,
        no_ini="an action that records answers and exits, not a setting of runs",
    ),
    Option(
        "concurrency",
        "model calls in flight at once",
        flag="--skill-concurrency",
        ini="skill_concurrency",
        kind=Kind.NUMBER,
        metavar="N",
        parse=whole(1),
    ),
    Option(
        "retries",
        "retries for rate limits, overload, 5xx and timeouts",
        flag="--skill-retries",
        ini="skill_retries",
        kind=Kind.NUMBER,
        metavar="N",
        parse=whole(0),
    ),
    Option(
        "timeout",
        "deadline of one remote model call, from connecting to the last byte of the answer; "
        "each retry gets its own",
        flag="--skill-timeout",
        ini="skill_timeout",
        kind=Kind.NUMBER,
        metavar="SECONDS",
        parse=positive_seconds,
    ),
    Option(
        "trials",
        "run every condition N times; 'auto[:MAX]' starts with 2 and adds trials only to "
        "cases whose outcome varies, until each model's comparison is settled by a "
        "sequential rule or MAX (default 10) trials are taken",
        flag="--skill-trials",
        ini="skill_trials",
        kind=Kind.NUMBER,
        metavar="N|auto[:MAX]",
        parse=trials_or_auto,
    ),
    Option(
        "pass_threshold",
        "fraction of with-skill trials that must pass (1: all)",
        flag="--skill-pass-threshold",
        ini="skill_pass_threshold",
        kind=Kind.NUMBER,
        metavar="FRACTION",
        parse=fraction,
    ),
    Option(
        "report_path",
        "write the JSON report to PATH (when GITHUB_STEP_SUMMARY names a file, a Markdown "
        "summary is appended to it too)",
        flag="--skill-report",
        ini="skill_report",
        metavar="PATH",
    ),
    Option(
        "html_path",
        "write a self-contained HTML report of every answer to PATH",
        flag="--skill-html",
        ini="skill_html",
        metavar="PATH",
    ),
    Option(
        "workspace_dir",
        "write the run in skill-creator's workspace layout (benchmark.json, grading.json, "
        "timing.json, outputs/) under DIR, one directory per model",
        flag="--skill-workspace",
        ini="skill_workspace",
        metavar="DIR",
    ),
    Option(
        "min_lift",
        "fail the session when a model's lift is below POINTS percentage points; 'POINTS:ci' "
        "demands the interval's lower bound clear it",
        flag="--skill-min-lift",
        ini="skill_min_lift",
        metavar="POINTS",
        parse=min_lift,
    ),
    Option(
        "judge_model",
        "model that grades 'judge' checks",
        flag="--skill-judge-model",
        ini="skill_judge_model",
        metavar="SPEC",
    ),
    Option(
        "reasoning",
        "how hard reasoning models think: off, minimal, low, medium, high, or a token "
        "budget; a case's 'reasoning' wins (default: each model's own)",
        flag="--skill-reasoning",
        ini="skill_reasoning",
        metavar="LEVEL",
    ),
    Option(
        "hf_download",
        "download hf: models missing from the Hugging Face cache (HF_HUB_CACHE, else "
        "HF_HOME/hub; HF_HUB_OFFLINE forbids it)",
        flag="--skill-hf-download",
        ini="skill_hf_download",
        kind=Kind.FLAG,
    ),
    Option(
        "gguf_dirs",
        "directories searched for GGUF files named by file name (the environment variable's "
        "first, os.pathsep-separated)",
        ini="skill_gguf_dirs",
        kind=Kind.PATHS,
        env="PYTEST_SKILLS_GGUF_DIR",
    ),
    Option(
        "skill_catalog",
        "the on-demand arm's catalog: these skills (comma-separated names) instead of every "
        "skill under the rootdir; the tested skill is always in it",
        flag="--skill-catalog",
        ini="skill_catalog",
        metavar="NAMES",
        parse=lambda text: tuple(n.strip() for n in str(text).split(",") if n.strip()),
    ),
    Option(
        "turn_budget",
        "model turns the on-demand arm allows before an answer must come",
        flag="--skill-turns",
        ini="skill_turns",
        kind=Kind.NUMBER,
        metavar="N",
        parse=whole(1),
    ),
    Option(
        "verifier_sandbox",
        "where upskill's command verifiers run: auto (bubblewrap, with no network and only "
        "the workspace writable, when 'bwrap' works here, else without a sandbox), bwrap "
        "(demand it), none. Either way commands get no secrets, limits, and nothing they "
        "start outlives them",
        flag="--skill-verifier-sandbox",
        ini="skill_verifier_sandbox",
        choices=SANDBOX_MODES,
        parse=choice(SANDBOX_MODES),
    ),
    Option(
        "verifier_env",
        "pass the environment variable NAME to verifier commands (they get only PATH, the "
        "locale and HOME otherwise); repeatable",
        flag="--skill-verifier-env",
        ini="skill_verifier_env",
        kind=Kind.LINES,
        metavar="NAME",
        repeat=True,
    ),
    Option(
        "skill_init",
        "write a commented starter DIR/<skill>.skill.yaml beside DIR's SKILL.md (DIR: the "
        "current directory when not given), one case per check kind; never overwrites; "
        "then exit",
        flag="--skill-init",
        metavar="DIR",
        bare_value=".",
        no_ini="an action that writes a file and exits, not a setting of runs",
    ),
    Option(
        "skill_cache_dump",
        "print every entry of the response cache at DIR (default: the run's --skill-cache-dir; "
        "a cache.db file works too) as stable text, sorted by skill, case, model, arm and "
        "trial, answers as text, then exit (git textconv: python -m "
        "pytest_skills.execution.dump)",
        flag="--skill-cache-dump",
        metavar="DIR",
        bare_value="",
        no_ini="an action that prints a cache and exits, not a setting of runs",
    ),
    Option(
        "skill_cache_merge",
        "merge the entries of other cache directories into this run's --skill-cache-dir, "
        "checking each like a committed cache; identical entries are kept once, conflicting "
        "answers keep this cache's and are listed; then exit without running tests",
        flag="--skill-cache-merge",
        metavar="DIR",
        nargs="+",
        no_ini="an action that merges caches and exits, not a setting of runs",
    ),
)

BY_NAME = {option.name: option for option in OPTIONS}
