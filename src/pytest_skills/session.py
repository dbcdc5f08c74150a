"""The per-run state that the thin hooks in ``plugin.py`` delegate to.

:class:`SkillRun` owns the cache, the runner and the records. It hands nodes a
:class:`~pytest_skills.context.RunContext` when they are made, executes the calls they
planned, keeps the records they produce, and reports on the controller.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pluggy
import pytest

from pytest_skills import gcpause
from pytest_skills.backends import Backend, BackendError, BackendOptions
from pytest_skills.backends.builtin import PROVIDERS, describe_parameters
from pytest_skills.checks import Check, CheckRegistry
from pytest_skills.checks.judge import JudgeCheck, register_judge_check
from pytest_skills.context import RunContext
from pytest_skills.execution.cache import CacheError, ResponseCache
from pytest_skills.execution.fingerprints import GGUFFingerprints
from pytest_skills.execution.runner import Call, Outcome, Progress, Runner
from pytest_skills.execution.secrets import redact, redact_data, secret_values
from pytest_skills.models import ALIASES_CHECKED, DEFAULT_ALIASES, ModelSpec, cache_model
from pytest_skills.models.specs import did_you_mean
from pytest_skills.report import export, html, terminal, workspace
from pytest_skills.report.problems import find_problems
from pytest_skills.report.records import ItemRecord, from_properties
from pytest_skills.report.run_info import run_info
from pytest_skills.report.summary import ModelSummary, gate_failures, summarise
from pytest_skills.settings import Settings

RUN_KEY = pytest.StashKey["SkillRun"]()
#: From this many planned calls, what collection and execution made is frozen (gc).
FREEZE_AT = 1000
SECTION = "skills"


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_xdist_controller(config: pytest.Config) -> bool:
    """Items run on workers; their records arrive as JSON on the reports."""
    return config.pluginmanager.has_plugin("dsession")


# eq=False: a registered plugin must hash by identity (pytest 8 keeps plugins in sets).
@dataclass(eq=False)
class SkillRun:
    config: pytest.Config
    settings: Settings
    #: The kinds plugins and the initial conftests registered.
    registry: CheckRegistry
    records: list[ItemRecord] = field(default_factory=list)
    deselected: int = 0
    unused_keys: list[str] = field(default_factory=list)
    gate_messages: list[str] = field(default_factory=list)
    summaries: list[ModelSummary] = field(default_factory=list)
    #: Set at the end: whether nothing was left out (unused entries mean something).
    whole_suite: bool = False
    _runner: Runner | None = None
    _cache: ResponseCache | None = None
    #: Read once, on the main thread, when the run starts.
    _secrets: dict[str, str] = field(default_factory=secret_values)
    #: Backends of plugin providers, built when their provider was checked.
    _prebuilt: dict[str, Backend] = field(default_factory=dict)
    #: Real paths of the skill test files collected so far.
    _collected: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.judge = JudgeCheck(self.settings.judge_model, self.ask)
        register_judge_check(self.registry, self.judge)
        self.context = RunContext(
            settings=self.settings,
            ask=self.ask,
            redact=self.redact,
            registry_for=self.registry_for,
            registry=self.registry,
        )

    def registry_for(self, ihook: pluggy.HookRelay) -> CheckRegistry:
        """The check kinds for files whose hooks are ``ihook`` (their conftests included)."""
        registry = CheckRegistry()
        ihook.pytest_skills_register_checks(registry=registry)
        register_judge_check(registry, self.judge)
        return registry

    @property
    def record_property_read(self) -> bool:
        """Whether anything reads the whole record from the reports: the controller
        (from an xdist worker's) or JUnit XML. Otherwise it is a kilobyte per item
        that nobody reads; the run keeps its records typed."""
        return is_xdist_worker(self.config) or bool(getattr(self.config.option, "xmlpath", None))

    def first_sight(self, path: Path) -> bool:
        """True the first time a file is seen: a directory symlink that loops back (or
        two links to one directory) must not collect the same cases again."""
        real = path.resolve()
        if real in self._collected:
            return False
        self._collected.add(real)
        return True

    def redact(self, text: str) -> str:
        """``text`` without the values of secret variables, for reports and JUnit."""
        return redact(text, self._secrets) if self._secrets else text

    def redact_report(self, report: pytest.TestReport) -> None:
        """Take secrets out of a skill test's failure text (terminal, JUnit, xdist).

        Every text the plugin builds is redacted already; this catches what a test
        prints itself, e.g. ``assert answer.text == ...`` on an answer holding a key.
        """
        if not self._secrets or report.longrepr is None:
            return
        text = str(report.longrepr)
        redacted = self.redact(text)
        if redacted != text:
            report.longrepr = redacted

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(
                self.settings.cache_dir,
                read_only=self.settings.cache_mode == "replay",
                secrets=self._secrets,
                # A refresh is how a cache is cleaned: one that is not ours is rebuilt.
                rebuild_untrusted=self.settings.cache_mode == "refresh",
                announce=self.announce,
            )
        return self._cache

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(
                cache=self.cache,
                mode=self.settings.cache_mode,
                backend_factory=self._make_backend,
                concurrency=self.settings.concurrency,
                retries=self.settings.retries,
                replay_check=GGUFFingerprints(self.settings.gguf_dirs, self.announce).warning,
                redact=self.redact,
            )
        return self._runner

    def check_providers(self) -> None:
        """Refuse, once and before anything runs, a model whose provider nothing serves.

        Built-in providers are only checked by name (their backends are built when a
        call needs one: replays need neither a key nor an SDK); a plugin's provider is
        asked for its backend now, which is kept for the run.
        """
        specs = [*self.settings.models, *filter(None, [self.settings.judge_model])]
        for spec in specs:
            if spec.provider in PROVIDERS or spec.resolved in self._prebuilt:
                continue
            backend = self.config.hook.pytest_skills_make_backend(spec=spec, config=self.config)
            if backend is None:
                raise pytest.UsageError(
                    f"pytest-skills: no backend for provider {spec.provider!r} in "
                    f"{spec.name!r}{did_you_mean(spec.provider, PROVIDERS)}: use "
                    f"{', '.join(p + ':' for p in PROVIDERS)}, or add a backend with the "
                    "pytest_skills_make_backend hook"
                )
            self._prebuilt[spec.resolved] = backend

    def _make_backend(self, spec: ModelSpec) -> Backend:
        prebuilt = self._prebuilt.pop(spec.resolved, None)
        if prebuilt is not None:
            return prebuilt
        backend = self.config.hook.pytest_skills_make_backend(spec=spec, config=self.config)
        if backend is None:
            raise BackendError(
                f"no backend for provider {spec.provider!r} (model {spec.name!r}): use "
                f"{', '.join(p + ':' for p in PROVIDERS)} or add one with the "
                "pytest_skills_make_backend hook"
            )
        return backend

    @property
    def backend_options(self) -> BackendOptions:
        return replace(self.settings.backend_options, announce=self.announce)

    def announce(self, message: str) -> None:
        """A line in the terminal, on its own (the progress line may be showing)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and self.config.option.verbose > -2:
            reporter.ensure_newline()
            reporter.write_line(f"skills: {message}")

    def ask(self, call: Call) -> Outcome:
        return self.runner.outcome(call)

    # --- header ---------------------------------------------------------------------

    def header(self) -> list[str]:
        s = self.settings
        models = (
            ", ".join(
                f"{m.name} ({m.resolved})" if m.name != m.resolved else m.name for m in s.models
            )
            or "none (skill items skip)"
        )
        if any(DEFAULT_ALIASES.get(m.name) == m.resolved for m in s.models):
            models += f"; built-in aliases checked {ALIASES_CHECKED}"
        reasoning = [f"skills: reasoning {s.reasoning.text}"] if s.reasoning else []
        # What each model is sent beyond the plain request, known before any call.
        for m in s.models:
            described = describe_parameters(m, s.reasoning)
            if described:
                reasoning.append(f"skills: {m.name}: {described}")
        lines = [
            f"skills: models: {models}",
            *reasoning,
            f"skills: cache {s.cache_mode} ({s.cache_mode_reason}) at {s.cache_dir}; "
            f"concurrency {s.concurrency}, trials {s.trials}"
            + ("" if s.baseline else ", no baseline"),
        ]
        # A base URL may carry a token in its query string.
        return [self.redact(line) for line in lines]

    # --- execution --------------------------------------------------------------------

    def execute(self, calls: Sequence[Call], reporter: Any = None) -> None:
        """Run ``calls`` concurrently before the items that need them run."""
        if not calls:
            return
        runner = self.runner
        runner.submit(calls)
        line = _ProgressLine(reporter)
        runner.wait(on_tick=line.show)
        line.done(runner.progress)
        if len(calls) >= FREEZE_AT:
            # The collected items and their answers live until the session ends; every
            # later collection would scan them again (a third of a large replay's time).
            gcpause.freeze_survivors()

    def prefetch(self, calls: Iterable[Call]) -> None:
        """Start ``calls`` without waiting (an xdist worker's queued items)."""
        self.runner.submit(calls)

    def gradings(self, answered: Iterable[tuple[Check, Call]]) -> list[Call]:
        """The judge calls that grading these (finished) answers will make."""
        if self.settings.judge_model is None:
            return []
        calls = []
        for check, call in answered:
            outcome = self.runner.outcome(call)
            if outcome.response is not None:
                calls.extend(self.judge.gradings(check, outcome.response.text))
        return calls

    # --- results --------------------------------------------------------------------

    def keep(self, record: ItemRecord) -> None:
        self.records.append(record)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Under xdist, records of the workers' items arrive on their reports, as JSON;
        # in one process they were kept, typed, when the report was made.
        if report.when == "call" and is_xdist_controller(self.config):
            record = from_properties(report.user_properties)
            if record is not None:
                self.keep(record)

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.deselected += len(items)

    def summary(self, reporter: Any) -> None:
        lines: list[str] = []
        if self.records:
            # finish() ran first (pytest prints the summary after sessionfinish).
            models = self.summaries or summarise(self.records, self.settings)
            lines += terminal.table(
                models, verbose=reporter.config.option.verbose > 0, records=self.records
            )
            # A parameter a server refused is adapted for the rest of the run: said once.
            lines += [f"skills: {m.model}: {note}" for m in models for note in m.adapted]
            lines += terminal.problem_lines(find_problems(self.records))
        narrowed = self.records and self.settings.cache_mode != "off" and not self.whole_suite
        if self.settings.cache_prune and narrowed:
            lines.append(
                "skills: --skill-cache-prune removed nothing: it needs a run of the whole "
                "suite (this one was narrowed by -k, -m, --lf, deselection, -x or a stop)"
            )
        if self.unused_keys:
            verb = "removed" if self.settings.cache_prune else "unused by this run"
            hint = "" if self.settings.cache_prune else "; --skill-cache-prune removes them"
            lines.append(f"skills: {len(self.unused_keys)} cache entries {verb}{hint}")
        unrecorded = self._cache.unrecorded if self._cache is not None else None
        if unrecorded is not None:
            lines.append(f"skills: {unrecorded[0]} answer(s) not recorded: {unrecorded[1]}")
        lines += [f"skills: GATE FAILED: {message}" for message in self.gate_messages]
        if not lines:
            return
        reporter.write_sep("=", SECTION, bold=True)
        for line in lines:
            reporter.write_line(self.redact(line), red=line.startswith("skills: GATE"))

    def finish(self, session: pytest.Session) -> None:
        s = self.settings
        models = self.summaries = summarise(self.records, s)
        if s.report_path is not None:
            s.report_path.parent.mkdir(parents=True, exist_ok=True)
            report = redact_data(export.to_json(models, self.records, s), self._secrets)
            s.report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        self._write_views(session, models)
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file and self.records:
            with open(summary_file, "a", encoding="utf-8") as handle:
                markdown = export.markdown(models, self.records, find_problems(self.records))
                handle.write(self.redact(markdown) + "\n")
        self.gate_messages = gate_failures(models, s)
        if self.gate_messages and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.whole_suite = self._ran_whole_suite(session)
        if self.whole_suite:
            self._find_unused()

    def _write_views(self, session: pytest.Session, models: list[ModelSummary]) -> None:
        """The HTML page and the skill-creator workspace, from the records as they are."""
        s = self.settings
        if s.html_path is None and s.workspace_dir is None:
            return
        info = run_info(s)
        try:
            if s.html_path is not None:
                s.html_path.parent.mkdir(parents=True, exist_ok=True)
                s.html_path.write_text(html.render(models, self.records, info), encoding="utf-8")
            if s.workspace_dir is not None:
                workspace.write(s.workspace_dir, models, self.records, info)
        except OSError as error:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            message = f"skills: cannot write the report: {error}; choose a writable path"
            if reporter is not None:
                reporter.write_line(message, red=True)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _ran_whole_suite(self, session: pytest.Session) -> bool:
        """Unused entries mean something only when nothing was left out of the run."""
        option = session.config.option
        narrowed = (
            self.deselected
            or getattr(option, "keyword", "")
            or getattr(option, "markexpr", "")
            or getattr(option, "lf", False)
            or getattr(option, "maxfail", 0)
            or session.shouldstop
            or session.shouldfail
        )
        return bool(self.records) and not narrowed and self.settings.cache_mode != "off"

    def _find_unused(self) -> None:
        # Only entries this run could have used count: same files, same models.
        used = {key for record in self.records for key in record.cache_keys}
        files = {record.file for record in self.records}
        models = {(m.provider, cache_model(m)) for m in self.settings.models}
        # A prune cleans the cache: one that is not ours is rebuilt before it is read.
        store = self.cache
        if self.settings.cache_prune:
            store = ResponseCache(
                self.settings.cache_dir,
                secrets=self._secrets,
                rebuild_untrusted=True,
                announce=self.announce,
            )
        try:
            unused = [
                entry.key
                for entry in store.entries(skip=used)
                if entry.label.rpartition("::")[0] in files
                and (entry.fields.get("provider"), entry.fields.get("model")) in models
            ]
            if unused and self.settings.cache_prune:
                store.delete(unused)
        except CacheError:
            return
        finally:
            if store is not self.cache:
                with contextlib.suppress(CacheError):
                    store.close()
        self.unused_keys = unused

    def close(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        if self._cache is not None:
            with contextlib.suppress(CacheError):
                self._cache.close()


class _ProgressLine:
    """A self-rewriting line on a terminal; when piped, one final line; none under -qq."""

    def __init__(self, reporter: Any):
        self.reporter = reporter
        self.enabled = (
            reporter is not None
            # pytest's isatty is a bool that is also callable: test its truth.
            and bool(getattr(reporter, "isatty", False))
            and reporter.config.option.verbose > -2
        )
        self.shown = False

    def text(self, progress: Progress) -> str:
        live = progress.done - progress.cached - progress.failed
        done = (
            f"{progress.done}/{progress.total}"
            if progress.done < progress.total
            else progress.total
        )
        return (
            f"skills: {done} calls: {live} live, {progress.cached} from the cache, "
            f"{progress.failed} failed ({progress.elapsed:.1f}s)"
        )

    def show(self, progress: Progress) -> None:
        if self.enabled:
            self.reporter.rewrite(self.text(progress))
            self.shown = True

    def done(self, progress: Progress) -> None:
        if self.shown:
            self.reporter.rewrite(self.text(progress))
            self.reporter.write_line("")
        elif self.reporter is not None and self.reporter.config.option.verbose > -2:
            self.reporter.write_line(self.text(progress))
