"""The per-run state that the thin hooks in ``plugin.py`` delegate to."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_skills import report
from pytest_skills.backends import Backend, BackendError
from pytest_skills.cache import CacheError, ResponseCache, redact, secret_values
from pytest_skills.calls import cache_model
from pytest_skills.checks import CheckRegistry
from pytest_skills.judge import register_judge_check
from pytest_skills.models import ModelSpec, Response
from pytest_skills.nodes import RESULT_PROPERTY, SkillItem
from pytest_skills.runner import Outcome, Progress, Runner
from pytest_skills.settings import Settings

RUN_KEY = pytest.StashKey["SkillRun"]()


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@dataclass
class SkillRun:
    config: pytest.Config
    settings: Settings
    registry: CheckRegistry
    records: list[dict[str, Any]] = field(default_factory=list)
    used_keys: set[str] = field(default_factory=set)
    deselected: int = 0
    unused_keys: list[str] = field(default_factory=list)
    gate_messages: list[str] = field(default_factory=list)
    summaries: list[report.ModelSummary] = field(default_factory=list)
    _runner: Runner | None = None
    _gguf_checked: dict[str, str | None] = field(default_factory=dict)
    _cache: ResponseCache | None = None
    _secrets: dict[str, str] | None = None

    @property
    def no_model_reason(self) -> str:
        return (
            "no skill model named: pass --skill-model SPEC (e.g. haiku, gemma3-270m, "
            "openai:gpt-4.1-mini) or set skill_models in the ini file"
        )

    def registry_for(self, node: pytest.Collector) -> CheckRegistry:
        """The check kinds for files under ``node``, asked of the conftests in its path.

        ``self.registry`` only hears plugins and the conftests loaded before configure;
        a conftest beside the skill files registers its kinds here.
        """
        registry = CheckRegistry()
        node.ihook.pytest_skills_register_checks(registry=registry)
        register_judge_check(registry, self)
        return registry

    def redact(self, text: str) -> str:
        """``text`` without the values of secret variables, for reports and JUnit."""
        if self._secrets is None:
            # Read once per run: scanning the environment per answer is measurable.
            self._secrets = secret_values()
        return redact(text, self._secrets) if self._secrets else text

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(
                self.settings.cache_dir,
                read_only=self.settings.cache_mode == "replay",
                # One process reads a snapshot until it writes; workers write at once.
                defer_writes=not is_xdist_worker(self.config),
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
            )
        return self._runner

    def _make_backend(self, spec: ModelSpec) -> Backend:
        backend = self.config.hook.pytest_skills_make_backend(spec=spec, config=self.config)
        if backend is None:
            raise BackendError(
                f"no backend for provider {spec.provider!r} (model {spec.name!r}): use "
                "anthropic:, openai: or gguf:, or add one with the pytest_skills_make_backend hook"
            )
        return backend

    # --- header ---------------------------------------------------------------------

    def header(self) -> list[str]:
        s = self.settings
        models = (
            ", ".join(
                f"{m.name} ({m.resolved})" if m.name != m.resolved else m.name for m in s.models
            )
            or "none (skill items skip)"
        )
        return [
            f"skills: models: {models}",
            f"skills: cache {s.cache_mode} ({s.cache_mode_reason}) at {s.cache_dir}; "
            f"concurrency {s.concurrency}, trials {s.trials}"
            + ("" if s.baseline else ", no baseline"),
        ]

    # --- planning and execution -------------------------------------------------------

    def execute(self, items: Sequence[pytest.Item], reporter: Any) -> None:
        """Run every call the selected items need before they run (controller or -n 0)."""
        calls = [
            call for item in items if isinstance(item, SkillItem) for _, call in item.planned_calls
        ]
        if not calls:
            return
        runner = self.runner
        runner.submit(calls)
        line = _ProgressLine(reporter)
        runner.wait(on_tick=line.show)
        line.done(runner.progress)

    def gguf_mismatch(self, spec: ModelSpec, response: Response) -> str | None:
        """A warning when a replayed answer came from a different file than the one here.

        Checked once per model and process, and only when the file can be found
        without effort: replay must keep working where the model is absent.
        """
        recorded = response.extra.get("gguf_sha256")
        if spec.provider != "gguf" or not response.cached or not recorded:
            return None
        if spec.resolved not in self._gguf_checked:
            from pytest_skills.gguf import file_sha256, locate_gguf

            message = None
            try:
                path = locate_gguf(spec.model, self.settings.gguf_dirs)
                actual = file_sha256(path)
                if actual != recorded:
                    message = (
                        f"{spec.name}: {path} (sha256 {actual[:12]}) differs from the "
                        f"file the cached answers came from ({recorded[:12]}); re-record "
                        "with --skill-cache=refresh if the model changed"
                    )
            except (BackendError, OSError):
                pass
            self._gguf_checked[spec.resolved] = message
            return message
        return None

    def call_warnings(self, spec: ModelSpec, outcome: Outcome) -> list[str]:
        """What a finished call warns its test of: an answer not cached, a changed GGUF file."""
        warnings = list(outcome.warnings)
        mismatch = outcome.response and self.gguf_mismatch(spec, outcome.response)
        if mismatch:
            warnings.append(mismatch)
        return warnings

    def prefetch(self, item: SkillItem) -> None:
        """Under xdist: start the calls of this worker's queued items, not just this one's."""
        queued = _queued_items(self.config, item)
        self.runner.submit(call for queued_item in queued for _, call in queued_item.planned_calls)

    # --- results --------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                record = value if isinstance(value, dict) else json.loads(value)
                self.records.append(record)
                self.used_keys.update(r["cache_key"] for r in record["results"])

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.deselected += len(items)

    def summary(self, reporter: Any) -> None:
        lines: list[str] = []
        if self.records:
            # finish() ran first (pytest prints the summary after sessionfinish).
            models = self.summaries or report.summarise(self.records, self.settings)
            lines += report.table(
                models, verbose=reporter.config.option.verbose > 0, records=self.records
            )
        if self.unused_keys:
            verb = "removed" if self.settings.cache_prune else "unused by this run"
            hint = "" if self.settings.cache_prune else "; --skill-cache-prune removes them"
            lines.append(f"skills: {len(self.unused_keys)} cache entries {verb}{hint}")
        lines += [f"skills: GATE FAILED: {message}" for message in self.gate_messages]
        for line in lines:
            reporter.write_line(line, red=line.startswith("skills: GATE"))

    def finish(self, session: pytest.Session) -> None:
        s = self.settings
        models = self.summaries = report.summarise(self.records, s)
        if s.report_path is not None:
            s.report_path.parent.mkdir(parents=True, exist_ok=True)
            s.report_path.write_text(
                json.dumps(report.to_json(models, self.records, s), indent=2) + "\n",
                encoding="utf-8",
            )
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file and self.records:
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(report.markdown(models) + "\n")
        self.gate_messages = report.gate_failures(models, s)
        if self.gate_messages and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self._ran_whole_suite(session):
            self._find_unused()

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
        files = {record["file"] for record in self.records}
        models = {(m.provider, cache_model(m)) for m in self.settings.models}
        try:
            unused = [
                entry.key
                for entry in self.cache.entries(skip=self.used_keys)
                if entry.label.rpartition("::")[0] in files
                and (entry.fields.get("provider"), entry.fields.get("model")) in models
            ]
            if unused and self.settings.cache_prune:
                writable = ResponseCache(self.settings.cache_dir)
                try:
                    writable.delete(unused)
                finally:
                    writable.close()
        except CacheError:
            return
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
        return (
            f"skills: {progress.done}/{progress.total} calls, {progress.cached} from cache, "
            f"{progress.failed} failed, {progress.elapsed:.1f}s"
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


def _queued_items(config: pytest.Config, current: SkillItem) -> list[SkillItem]:
    """The items xdist has queued on this worker (best effort; just ``current`` otherwise)."""
    items: list[SkillItem] = [current]
    for plugin in config.pluginmanager.get_plugins():
        queue = getattr(plugin, "torun", None)
        session = getattr(plugin, "session", None)
        if queue is None or session is None or not hasattr(queue, "lock"):
            continue
        try:
            with queue.lock() as pending:
                indices = [i for i in pending if isinstance(i, int)]
            items.extend(
                session.items[i] for i in indices if isinstance(session.items[i], SkillItem)
            )
        except Exception:  # xdist internals changed: fall back to one item at a time
            pass
    return items
