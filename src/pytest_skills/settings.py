"""Command-line options and ini keys, resolved once into a frozen :class:`Settings`.

Precedence is CLI > environment > ini > default. The resolved object lives in
``config.stash[SETTINGS_KEY]``; nothing else reads options directly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_skills.backends import BackendOptions
    from pytest_skills.checks.sandbox import SandboxPolicy

from pytest_skills.arms import AA, BASELINE, DEFAULT_ARMS, SKILL, Arm, ArmError, parse_arms
from pytest_skills.models import (
    ALIASES_CHECKED,
    DEFAULT_ALIASES,
    ModelSpec,
    Reasoning,
    SpecError,
    parse_aliases,
    parse_model_spec,
    parse_reasoning,
)
from pytest_skills.options import (
    BY_NAME,
    CACHE_MODES,
    OPTIONS,
    Kind,
    Option,
    OptionError,
    choice,
    truthy,
)

GGUF_DIR_ENV = BY_NAME["gguf_dirs"].env or ""


NO_MODEL_REASON = (
    "no skill model named: pass --skill-model SPEC (e.g. haiku, gemma3-270m, "
    "openai:gpt-4.1-mini) or set skill_models in the ini file"
)


@dataclass(frozen=True)
class Settings:
    """The run's options, resolved. The field defaults are the options' defaults."""

    models: tuple[ModelSpec, ...] = ()
    #: The arms every case runs in; the first ``skill`` arm (or the first arm) decides.
    arms: tuple[Arm, ...] = DEFAULT_ARMS
    fail_on_regression: bool = False
    plan: bool = False
    max_cost: float | None = None
    #: How the comparisons' p-values are adjusted together: holm, bh or none.
    multiplicity: str = "holm"
    cache_mode: str = "auto"
    cache_mode_reason: str = "default"
    cache_dir: Path = Path(".skill-cache")
    cache_prune: bool = False
    #: ``--skill-batch``: live calls go to the providers' batch APIs.
    batch: bool = False
    batch_wait: bool = False
    batch_poll: float = 30.0
    concurrency: int = 8
    retries: int = 4
    timeout: float = 120.0
    trials: int = 1
    #: ``--skill-trials auto:MAX``: trials are added up to this many (None: fixed trials).
    trials_max: int | None = None
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
        from pytest_skills.checks.sandbox import SandboxPolicy

        return SandboxPolicy(self.verifier_sandbox, self.verifier_env)

    #: The on-demand arm: its catalog narrowed to these skill names, and its turn budget.
    skill_catalog: tuple[str, ...] = ()
    turn_budget: int = 8

    @property
    def baseline(self) -> bool:
        return BASELINE in self.arms

    @property
    def deciding_arm(self) -> Arm:
        """The arm whose checks decide an item's pytest outcome."""
        return SKILL if SKILL in self.arms else self.arms[0]

    @property
    def required_passes(self) -> int:
        """With-skill trials an item must pass: the threshold's share, rounded up."""
        return self.passes_needed(self.trials)

    def passes_needed(self, trials: int) -> int:
        """Of ``trials`` deciding-arm trials, how many must pass."""
        return max(1, math.ceil(self.pass_threshold * trials - 1e-9))

    @property
    def backend_options(self) -> BackendOptions:
        from pytest_skills.backends import BackendOptions

        return BackendOptions(
            timeout=self.timeout, gguf_dirs=self.gguf_dirs, hf_download=self.hf_download
        )


#: The defaults every option's help text and resolution read.
DEFAULTS = Settings()


SETTINGS_KEY = pytest.StashKey[Settings]()


def _default_text(option: Option) -> str:
    if option.name == "cache_dir":
        return ".skill-cache under the rootdir"
    value = getattr(DEFAULTS, option.name, None)
    if value in (None, (), False) or option.kind is Kind.FLAG:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _help(option: Option) -> str:
    default = _default_text(option)
    ini = f"ini: {option.ini}" if option.ini else ""
    env = f"environment: {option.env}" if option.env and option.name != "cache_mode" else ""
    extras = "; ".join(part for part in (f"default {default}" if default else "", ini, env) if part)
    return f"{option.help}" + (f" ({extras})" if extras else "")


def add_options(parser: pytest.Parser) -> None:
    """Register every option of :data:`OPTIONS`: its flag and its ini key."""
    group = parser.getgroup("skills", "agent skill tests (pytest-skills)")
    for option in OPTIONS:
        if option.flag is not None:
            kwargs: dict[str, Any] = {"dest": option.dest, "help": _help(option)}
            if option.kind is Kind.FLAG:
                kwargs.update(action="store_true", default=None)
            elif option.repeat:
                kwargs.update(action="append", default=[], metavar=option.metavar)
            else:
                kwargs.update(default=None, metavar=option.metavar)
                if option.bare_value is not None:
                    kwargs.update(nargs="?", const=option.bare_value)
                if option.nargs is not None:
                    kwargs["nargs"] = option.nargs
                if option.choices:
                    kwargs["choices"] = option.choices
            group.addoption(option.flag, **kwargs)
        if option.ini is not None:
            default: Any = [] if option.kind in (Kind.LINES, Kind.PATHS) else ""
            parser.addini(
                option.ini,
                _help(option),
                type=option.kind.ini_type,  # type: ignore[arg-type]
                default=default,
            )


def _given(config: pytest.Config, option: Option) -> tuple[Any, str] | None:
    """The option's value and where it came from: command line, then environment,
    then ini file; None when it was not set anywhere."""
    if option.flag is not None:
        value = config.getoption(option.dest)
        if value not in (None, []):
            return value, option.flag
    if option.env is not None and option.env in os.environ and option.name != "cache_mode":
        return os.environ[option.env], option.env
    if option.ini is not None:
        value = config.getini(option.ini)
        if value not in (None, "", []) and str(value).strip() != "":
            return value, f"ini {option.ini}"
    return None


def _value(config: pytest.Config, name: str) -> Any:
    """The parsed value of option ``name``, or the default; bad input is a usage error
    that names where the value came from."""
    option = BY_NAME[name]
    given = _given(config, option)
    if given is None:
        return getattr(DEFAULTS, name, None)
    value, source = given
    if option.parse is None:
        return truthy(value) if option.kind is Kind.FLAG else value
    try:
        return option.parse(value)
    except OptionError as error:
        raise pytest.UsageError(f"{source}: {error}") from None


def _path(config: pytest.Config, name: str) -> Path | None:
    """A path option: the shell's when typed on the command line, the rootdir's when
    written in the ini file (or when it is the project's wherever it is given)."""
    option = BY_NAME[name]
    given = _given(config, option)
    if given is None:
        return None
    value, source = given
    path = Path(str(value).strip())
    if path.is_absolute():
        return path
    if option.project_path or source.startswith("ini "):
        return config.rootpath / path
    return path


def _cache_mode(config: pytest.Config) -> tuple[str, str]:
    option = BY_NAME["cache_mode"]
    cli = config.getoption(option.dest)
    if cli:
        return cli, option.flag or ""
    if truthy(os.environ.get("CI")):
        return "replay", "CI is set"
    given = _given(config, option)
    if given is not None:
        try:
            return choice(CACHE_MODES)(given[0]), given[1]
        except OptionError as error:
            raise pytest.UsageError(f"{given[1]}: {error}") from None
    return DEFAULTS.cache_mode, "default"


def _reasoning(config: pytest.Config) -> Reasoning | None:
    given = _given(config, BY_NAME["reasoning"])
    if given is None:
        return None
    try:
        return parse_reasoning(str(given[0]))
    except ValueError as error:
        raise pytest.UsageError(f"{given[1]}: {error}") from None


def _arms(config: pytest.Config) -> tuple[Arm, ...]:
    given = _given(config, BY_NAME["arms"])
    try:
        arms = parse_arms(str(given[0])) if given else DEFAULT_ARMS
    except ArmError as error:
        raise pytest.UsageError(f"{given[1] if given else '--skill-arms'}: {error}") from None
    compare = _given(config, BY_NAME["compare"])
    if compare is not None:
        ref = str(compare[0]).strip()
        versions = parse_arms(f"skill,ref:{ref}")
        arms = (*versions, *(arm for arm in arms if arm not in versions))
    baseline_switch = _given(config, BY_NAME["baseline"])
    if baseline_switch is not None:
        # The command line switch turns the baseline off; the ini key says whether it runs.
        value, source = baseline_switch
        runs = not value if source.startswith("--") else truthy(value)
        if not runs:
            arms = tuple(arm for arm in arms if arm != BASELINE)
    if truthy(_value(config, "aa")) and AA not in arms:
        arms = (*arms, AA)
    if not arms:
        raise pytest.UsageError("--no-skill-baseline left no arm to run: add one with --skill-arms")
    return arms


def _verifier_env(config: pytest.Config) -> tuple[str, ...]:
    given = _given(config, BY_NAME["verifier_env"])
    names = [str(name) for name in given[0]] if given else []
    for name in names:
        if not name or "=" in name or "\x00" in name:
            raise pytest.UsageError(
                f"--skill-verifier-env {name!r}: expected the name of an environment variable"
            )
    return tuple(dict.fromkeys(names))


def _aliases(config: pytest.Config) -> dict[str, str]:
    return {**DEFAULT_ALIASES, **parse_aliases(config.getini("skill_model_aliases"))}


def resolve(config: pytest.Config) -> Settings:
    """Read options, environment and ini into one Settings; raise UsageError on bad input."""
    try:
        aliases = _aliases(config)
        typed = _value(config, "models") or ()
        models = tuple(parse_model_spec(text, aliases) for text in typed)
        judge_text = _value(config, "judge_model")
        judge = parse_model_spec(judge_text, aliases) if judge_text else None
    except SpecError as error:
        raise pytest.UsageError(f"pytest-skills: {error}") from None
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise pytest.UsageError(f"--skill-model named twice: {', '.join(duplicates)}")
    mode, reason = _cache_mode(config)
    min_lift = _value(config, "min_lift")
    env_dirs = [Path(p) for p in os.environ.get(GGUF_DIR_ENV, "").split(os.pathsep) if p]
    ini_dirs = [Path(p) for p in config.getini("skill_gguf_dirs")]
    arms = _arms(config)
    trials = _value(config, "trials")
    if isinstance(trials, int):  # the default
        trials = (trials, None)
    if _value(config, "batch") and mode != "auto":
        hint = "CI=true replays: pass --skill-cache=auto" if reason == "CI is set" else mode
        raise pytest.UsageError(
            f"--skill-batch records what batches answer in the cache: it needs "
            f"--skill-cache=auto ({hint})"
        )
    if _value(config, "batch") and trials[1] is not None:
        raise pytest.UsageError(
            "--skill-batch sends a fixed number of trials; --skill-trials auto decides them "
            "from answers as they come: give a number"
        )
    return Settings(
        models=models,
        arms=arms,
        fail_on_regression=bool(_value(config, "fail_on_regression")),
        multiplicity=_value(config, "multiplicity"),
        plan=bool(_value(config, "plan")),
        max_cost=_value(config, "max_cost"),
        cache_mode=mode,
        cache_mode_reason=reason,
        cache_dir=_path(config, "cache_dir") or config.rootpath / ".skill-cache",
        cache_prune=bool(_value(config, "cache_prune")),
        batch=bool(_value(config, "batch")),
        batch_wait=bool(_value(config, "batch_wait")),
        batch_poll=_value(config, "batch_poll"),
        concurrency=_value(config, "concurrency"),
        retries=_value(config, "retries"),
        timeout=_value(config, "timeout"),
        trials=trials[0],
        trials_max=trials[1],
        pass_threshold=_value(config, "pass_threshold"),
        report_path=_path(config, "report_path"),
        html_path=_path(config, "html_path"),
        workspace_dir=_path(config, "workspace_dir"),
        min_lift=min_lift[0] if min_lift else None,
        min_lift_significant=bool(min_lift and min_lift[1]),
        judge_model=judge,
        gguf_dirs=tuple(env_dirs + ini_dirs),
        reasoning=_reasoning(config),
        hf_download=bool(_value(config, "hf_download")),
        verifier_sandbox=_value(config, "verifier_sandbox"),
        verifier_env=_verifier_env(config),
        skill_catalog=_value(config, "skill_catalog") or (),
        turn_budget=_value(config, "turn_budget"),
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
