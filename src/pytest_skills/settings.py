"""Command-line options and ini keys, resolved once into a frozen :class:`Settings`.

Precedence is CLI > environment > ini > default. The resolved object lives in
``config.stash[SETTINGS_KEY]``; nothing else reads options directly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_skills.backends import BackendOptions
from pytest_skills.checks.sandbox import SANDBOX_MODES, SandboxPolicy
from pytest_skills.models import (
    ALIASES_CHECKED,
    DEFAULT_ALIASES,
    REASONING_HELP,
    ModelSpec,
    Reasoning,
    SpecError,
    parse_aliases,
    parse_model_spec,
    parse_reasoning,
)

CACHE_MODES = ("auto", "replay", "refresh", "off")
GGUF_DIR_ENV = "PYTEST_SKILLS_GGUF_DIR"


NO_MODEL_REASON = (
    "no skill model named: pass --skill-model SPEC (e.g. haiku, gemma3-270m, "
    "openai:gpt-4.1-mini) or set skill_models in the ini file"
)


@dataclass(frozen=True)
class Settings:
    """The run's options, resolved. The field defaults are the options' defaults."""

    models: tuple[ModelSpec, ...] = ()
    baseline: bool = True
    cache_mode: str = "auto"
    cache_mode_reason: str = "default"
    cache_dir: Path = Path(".skill-cache")
    cache_prune: bool = False
    concurrency: int = 8
    retries: int = 4
    timeout: float = 120.0
    trials: int = 1
    pass_threshold: float = 1.0
    report_path: Path | None = None
    #: ``--skill-html``: one self-contained HTML page of every answer.
    html_path: Path | None = None
    #: ``--skill-workspace``: the run in skill-creator's layout, one directory per model.
    workspace_dir: Path | None = None
    min_lift: float | None = None
    min_lift_significant: bool = False
    judge_model: ModelSpec | None = None
    gguf_dirs: tuple[Path, ...] = ()
    #: The run's reasoning setting; a file's ``defaults`` and a case's ``reasoning`` win.
    reasoning: Reasoning | None = None
    hf_download: bool = False
    #: ``--skill-verifier-sandbox``: auto (bubblewrap when it runs here), bwrap, none.
    verifier_sandbox: str = "auto"
    #: ``--skill-verifier-env``: variables passed to verifier commands, by name.
    verifier_env: tuple[str, ...] = ()

    @property
    def sandbox_policy(self) -> SandboxPolicy:
        return SandboxPolicy(self.verifier_sandbox, self.verifier_env)

    @property
    def required_passes(self) -> int:
        """With-skill trials an item must pass: the threshold's share, rounded up."""
        return max(1, math.ceil(self.pass_threshold * self.trials - 1e-9))

    @property
    def backend_options(self) -> BackendOptions:
        return BackendOptions(
            timeout=self.timeout, gguf_dirs=self.gguf_dirs, hf_download=self.hf_download
        )


#: The defaults every option's help text and resolution read.
DEFAULTS = Settings()


SETTINGS_KEY = pytest.StashKey[Settings]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("skills", "agent skill tests (pytest-skills)")
    group.addoption(
        "--skill-model",
        action="append",
        default=[],
        metavar="SPEC",
        help="model to run skill cases on: alias (haiku, gemma3-270m) or "
        "provider:name[@base_url]; repeatable. ini: skill_models. Keys come from "
        "ANTHROPIC_API_KEY / OPENAI_API_KEY, servers from ANTHROPIC_BASE_URL / "
        "OPENAI_BASE_URL",
    )
    group.addoption(
        "--skill-models-list",
        action="store_true",
        default=False,
        help="list the model aliases (built in and from ini skill_model_aliases) with what "
        "each resolves to, and the GGUF directories searched, then exit",
    )
    group.addoption(
        "--no-skill-baseline",
        action="store_true",
        default=False,
        help="skip the baseline (without-skill) calls; no lift is reported",
    )
    group.addoption(
        "--skill-cache",
        choices=CACHE_MODES,
        default=None,
        help="response cache mode: auto (default), replay (the default when the "
        "environment variable CI is truthy, as on CI services), refresh, off. "
        "ini: skill_cache",
    )
    group.addoption(
        "--skill-cache-dir",
        default=None,
        metavar="DIR",
        help="response cache directory (default: .skill-cache under rootdir). ini: skill_cache_dir",
    )
    group.addoption(
        "--skill-cache-prune",
        action="store_true",
        default=False,
        help="after a full run, delete cache entries that no selected item used",
    )
    group.addoption(
        "--skill-concurrency",
        type=int,
        default=None,
        metavar="N",
        help=f"model calls in flight at once (default {DEFAULTS.concurrency}). "
        "ini: skill_concurrency",
    )
    group.addoption(
        "--skill-retries",
        type=int,
        default=None,
        metavar="N",
        help=f"retries for rate limits, overload, 5xx and timeouts (default {DEFAULTS.retries})",
    )
    group.addoption(
        "--skill-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="deadline of one remote model call, from connecting to the last byte of the "
        f"answer (default {DEFAULTS.timeout:g}); each retry gets its own",
    )
    group.addoption(
        "--skill-trials",
        type=int,
        default=None,
        metavar="N",
        help=f"run every condition N times (default {DEFAULTS.trials}). ini: skill_trials",
    )
    group.addoption(
        "--skill-pass-threshold",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fraction of with-skill trials that must pass "
        f"(default {DEFAULTS.pass_threshold:g}: all)",
    )
    group.addoption(
        "--skill-report",
        default=None,
        metavar="PATH",
        help="write the JSON report to PATH (when GITHUB_STEP_SUMMARY names a file, a "
        "Markdown summary is appended to it too)",
    )
    group.addoption(
        "--skill-html",
        default=None,
        metavar="PATH",
        help="write a self-contained HTML report of every answer to PATH. ini: skill_html",
    )
    group.addoption(
        "--skill-workspace",
        default=None,
        metavar="DIR",
        help="write the run in skill-creator's workspace layout (benchmark.json, "
        "grading.json, timing.json, outputs/) under DIR, one directory per model",
    )
    group.addoption(
        "--skill-min-lift",
        default=None,
        metavar="POINTS",
        help="fail the session when a model's lift is below POINTS percentage points; "
        "'POINTS:ci' demands the interval's lower bound clear it",
    )
    group.addoption(
        "--skill-judge-model",
        default=None,
        metavar="SPEC",
        help="model that grades 'judge' checks. ini: skill_judge_model",
    )
    group.addoption(
        "--skill-reasoning",
        default=None,
        metavar="LEVEL",
        help=f"how hard reasoning models think: {REASONING_HELP}; a case's 'reasoning' "
        "wins (default: each model's own). ini: skill_reasoning",
    )
    group.addoption(
        "--skill-hf-download",
        action="store_true",
        default=None,
        help="download hf: models missing from the Hugging Face cache (HF_HUB_CACHE, "
        "else HF_HOME/hub; HF_HUB_OFFLINE forbids it). ini: skill_hf_download",
    )
    _add_verifier_options(group, parser)
    parser.addini("skill_models", "models to run skill cases on", type="linelist", default=[])
    parser.addini(
        "skill_model_aliases",
        "extra model aliases, one 'alias = spec' per line",
        type="linelist",
        default=[],
    )
    parser.addini("skill_cache", "response cache mode", default="")
    parser.addini("skill_cache_dir", "response cache directory", default="")
    parser.addini("skill_concurrency", "model calls in flight at once", default="")
    parser.addini("skill_trials", "trials per condition", default="")
    parser.addini("skill_judge_model", "model that grades 'judge' checks", default="")
    parser.addini("skill_html", "write a self-contained HTML report here", default="")
    parser.addini("skill_reasoning", "how hard reasoning models think", default="")
    parser.addini(
        "skill_hf_download",
        "download hf: models missing from the cache",
        type="bool",
        default=False,
    )
    parser.addini(
        "skill_gguf_dirs",
        "directories searched for GGUF files named by file name (after those in the "
        f"environment variable {GGUF_DIR_ENV}, {os.pathsep!r}-separated)",
        type="paths",
        default=[],
    )


def _add_verifier_options(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    group.addoption(
        "--skill-verifier-sandbox",
        choices=SANDBOX_MODES,
        default=None,
        help="where upskill's command verifiers run: auto (default: bubblewrap, with no "
        "network and only the workspace writable, when 'bwrap' works here, else without a "
        "sandbox), bwrap (demand it), none. Either way commands get no secrets, limits, "
        "and nothing they start outlives them. ini: skill_verifier_sandbox",
    )
    group.addoption(
        "--skill-verifier-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass the environment variable NAME to verifier commands (they get only PATH, "
        "the locale and HOME otherwise); repeatable. ini: skill_verifier_env",
    )
    parser.addini("skill_verifier_sandbox", "where command verifiers run", default="")
    parser.addini(
        "skill_verifier_env",
        "environment variables passed to verifier commands",
        type="linelist",
        default=[],
    )


def _verifier_sandbox(config: pytest.Config) -> str:
    cli = config.getoption("skill_verifier_sandbox")
    if cli:
        return str(cli)
    ini = str(config.getini("skill_verifier_sandbox")).strip()
    if ini and ini not in SANDBOX_MODES:
        raise pytest.UsageError(
            f"ini skill_verifier_sandbox = {ini!r}: choose one of {', '.join(SANDBOX_MODES)}"
        )
    return ini or DEFAULTS.verifier_sandbox


def _verifier_env(config: pytest.Config) -> tuple[str, ...]:
    names = [*config.getoption("skill_verifier_env"), *config.getini("skill_verifier_env")]
    for name in names:
        if not name or "=" in name or "\x00" in name:
            raise pytest.UsageError(
                f"--skill-verifier-env {name!r}: expected the name of an environment variable"
            )
    return tuple(dict.fromkeys(names))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in {"", "0", "false", "no", "off"}


def _int(value: object, name: str, minimum: int) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{name}: expected a whole number, got {value!r}") from None
    if number < minimum:
        raise pytest.UsageError(f"{name}: must be at least {minimum}, got {number}")
    return number


def _pick(cli: object, ini: object, default: int) -> object:
    """CLI over ini over default; an explicit 0 is a value (validated later), not "unset"."""
    if cli is not None:
        return cli
    if str(ini).strip():
        return ini
    return default


def _cache_mode(config: pytest.Config) -> tuple[str, str]:
    cli = config.getoption("skill_cache")
    if cli:
        return cli, "--skill-cache"
    if _truthy(os.environ.get("CI")):
        return "replay", "CI is set"
    ini = str(config.getini("skill_cache")).strip()
    if ini:
        if ini not in CACHE_MODES:
            raise pytest.UsageError(
                f"ini skill_cache = {ini!r}: choose one of {', '.join(CACHE_MODES)}"
            )
        return ini, "ini skill_cache"
    return DEFAULTS.cache_mode, "default"


def _min_lift(text: str | None) -> tuple[float | None, bool]:
    if not text:
        return None, False
    value, _, form = text.partition(":")
    try:
        points = float(value)
    except ValueError:
        raise pytest.UsageError(
            f"--skill-min-lift {text!r}: expected points, e.g. 10 or 10:ci"
        ) from None
    if form not in ("", "ci"):
        raise pytest.UsageError(f"--skill-min-lift {text!r}: the only form is POINTS:ci")
    return points, form == "ci"


def _reasoning(config: pytest.Config) -> Reasoning | None:
    cli = config.getoption("skill_reasoning")
    if cli:
        text, source = cli, "--skill-reasoning"
    else:
        text, source = config.getini("skill_reasoning"), "ini skill_reasoning"
    if not str(text).strip():
        return None
    try:
        return parse_reasoning(str(text))
    except ValueError as error:
        raise pytest.UsageError(f"{source}: {error}") from None


def resolve(config: pytest.Config) -> Settings:
    """Read options, environment and ini into one Settings; raise UsageError on bad input."""
    try:
        aliases = {**DEFAULT_ALIASES, **parse_aliases(config.getini("skill_model_aliases"))}
        typed = list(config.getoption("skill_model")) or list(config.getini("skill_models"))
        models = tuple(parse_model_spec(text, aliases) for text in typed)
        judge_text = config.getoption("skill_judge_model") or str(
            config.getini("skill_judge_model")
        )
        judge = parse_model_spec(judge_text, aliases) if judge_text.strip() else None
    except SpecError as error:
        raise pytest.UsageError(f"pytest-skills: {error}") from None
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise pytest.UsageError(f"--skill-model named twice: {', '.join(duplicates)}")

    mode, reason = _cache_mode(config)
    cache_dir_text = config.getoption("skill_cache_dir") or str(config.getini("skill_cache_dir"))
    cache_dir = Path(cache_dir_text) if cache_dir_text else config.rootpath / ".skill-cache"
    if not cache_dir.is_absolute():
        cache_dir = config.rootpath / cache_dir

    concurrency = _pick(
        config.getoption("skill_concurrency"),
        config.getini("skill_concurrency"),
        DEFAULTS.concurrency,
    )
    trials = _pick(config.getoption("skill_trials"), config.getini("skill_trials"), DEFAULTS.trials)
    retries = config.getoption("skill_retries")
    timeout = config.getoption("skill_timeout")
    threshold = config.getoption("skill_pass_threshold")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise pytest.UsageError("--skill-pass-threshold: expected a fraction in (0, 1]")
    if timeout is not None and timeout <= 0:
        raise pytest.UsageError("--skill-timeout: expected a positive number of seconds")
    min_lift, significant = _min_lift(config.getoption("skill_min_lift"))
    report = config.getoption("skill_report")
    html_cli, html_ini = config.getoption("skill_html"), str(config.getini("skill_html")).strip()
    # On the command line a path is the shell's (relative to where pytest runs); in the
    # ini file it is the project's (relative to the rootdir).
    html = Path(html_cli) if html_cli else (config.rootpath / html_ini if html_ini else None)
    workspace = config.getoption("skill_workspace")

    env_dirs = [Path(p) for p in os.environ.get(GGUF_DIR_ENV, "").split(os.pathsep) if p]
    ini_dirs = [Path(p) for p in config.getini("skill_gguf_dirs")]

    return Settings(
        models=models,
        baseline=not config.getoption("no_skill_baseline"),
        cache_mode=mode,
        cache_mode_reason=reason,
        cache_dir=cache_dir,
        cache_prune=bool(config.getoption("skill_cache_prune")),
        concurrency=_int(concurrency, "skill_concurrency", 1),
        retries=_int(DEFAULTS.retries if retries is None else retries, "--skill-retries", 0),
        timeout=DEFAULTS.timeout if timeout is None else float(timeout),
        trials=_int(trials, "skill_trials", 1),
        pass_threshold=DEFAULTS.pass_threshold if threshold is None else float(threshold),
        report_path=Path(report) if report else None,
        html_path=html,
        workspace_dir=Path(workspace) if workspace else None,
        min_lift=min_lift,
        min_lift_significant=significant,
        judge_model=judge,
        gguf_dirs=tuple(env_dirs + ini_dirs),
        reasoning=_reasoning(config),
        hf_download=bool(
            config.getoption("skill_hf_download") or config.getini("skill_hf_download")
        ),
        verifier_sandbox=_verifier_sandbox(config),
        verifier_env=_verifier_env(config),
    )


def models_list(config: pytest.Config, settings: Settings) -> list[str]:
    """What ``--skill-models-list`` prints: every alias and what it resolves to."""
    ini = parse_aliases(config.getini("skill_model_aliases"))
    aliases = {**DEFAULT_ALIASES, **ini}
    width = max(len(name) for name in aliases)
    lines = [
        f"model aliases, built-in ones checked {ALIASES_CHECKED} (pass one to --skill-model, "
        "or write provider:name[@base_url] or hf:OWNER/REPO:QUANT):"
    ]
    for name in sorted(aliases):
        origin = "  (ini skill_model_aliases)" if name in ini else ""
        lines.append(f"  {name:<{width}}  {parse_model_spec(name, aliases).resolved}{origin}")
    lines.append("GGUF files named by file name are looked up in:")
    lines += [f"  {directory}" for directory in settings.gguf_dirs] or ["  (no directories set)"]
    lines.append(
        f"  (set {GGUF_DIR_ENV} or ini skill_gguf_dirs; gemma3-270m comes from the "
        "'demo' extra's package; hf: models are looked for there, then in the Hugging Face "
        "cache, HF_HUB_CACHE or HF_HOME/hub)"
    )
    return lines
