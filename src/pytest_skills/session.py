"""The run's life cycle, which the thin hooks in ``plugin.py`` hand off to.

A :class:`SkillSession` is made when pytest is configured and lives until it ends:

1. **configure**: the settings, the services nodes are handed (calls, redaction, check
   registries), the providers checked;
2. **collect**: skill test files become nodes holding a :class:`RunContext`;
3. **run**: a :class:`~pytest_skills.execution.window.CallWindow` makes each item's
   calls just ahead of it; items grade their answers and leave a record;
4. **finish** (the controller): one :class:`~pytest_skills.report.summary.RunSummary`
   for every output, the gates, the unused cache entries;
5. **close**: the runner and the cache.

Each step's work is done by the module that owns it; this class only keeps the order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_skills.arms import DEFAULT_ARMS
from pytest_skills.execution.secrets import Redactor
from pytest_skills.settings import Settings

if TYPE_CHECKING:
    from pytest_skills.backends.base import Backend
    from pytest_skills.backends.batches import BatchClient
    from pytest_skills.backends.provision import BackendProvider
    from pytest_skills.context import RunContext
    from pytest_skills.execution.calls import CallService
    from pytest_skills.execution.runner import Call
    from pytest_skills.execution.window import CallWindow
    from pytest_skills.models import ModelSpec
    from pytest_skills.report.batches import BatchNote
    from pytest_skills.report.records import ItemRecord
    from pytest_skills.report.summary import RunSummary

# The services below are made when a skill file or a skill test first needs them: a
# project that installs the plugin pays nothing for them in its other test runs.

RUN_KEY = pytest.StashKey["SkillSession"]()
#: The report property an xdist worker's sequential-trials lines travel in.
SEQUENTIAL_PROPERTY = "skills_sequential"


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_xdist_controller(config: pytest.Config) -> bool:
    """Items run on workers; their records arrive as JSON on the reports."""
    return config.pluginmanager.has_plugin("dsession")


class SkillSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.redact = Redactor()
        self.records: list[ItemRecord] = []
        #: Calls of skipped items that wait in a provider batch, or failed in one.
        self.batch_notes: list[BatchNote] = []
        self.deselected = 0
        self.summary: RunSummary | None = None
        self.unused_keys: list[str] = []
        #: Set at the end: whether nothing was left out (unused entries mean something).
        self.whole_suite = False
        #: One line per output file, written or refused.
        self.written: list[str] = []
        self._window: CallWindow | None = None
        self._plans: list[Any] = []
        #: Where each model's comparison stopped taking trials (``--skill-trials auto``),
        #: as the summary says it; under xdist, from the workers' first reports.
        self.sequential: list[str] = []
        self.sequential_sent = False
        #: Real paths of the skill test files collected so far.
        self._collected: set[Path] = set()
        self._previous_root: Path | None = None

    @cached_property
    def backends(self) -> BackendProvider:
        from pytest_skills.backends.provision import BackendProvider

        return BackendProvider(self._backend_from_hook)

    @cached_property
    def calls(self) -> CallService:
        from pytest_skills.execution.calls import CallService

        s = self.settings
        return CallService(
            cache_dir=s.cache_dir,
            cache_mode=s.cache_mode,
            concurrency=s.concurrency,
            retries=s.retries,
            gguf_dirs=s.gguf_dirs,
            backend_factory=self.backends,
            redact=self.redact,
            announce=self.announce,
        )

    @cached_property
    def context(self) -> RunContext:
        """What nodes and the fixture are handed when they are made."""
        from pytest_skills.arms import ArmPrompts
        from pytest_skills.checks.judge import JudgeCheck
        from pytest_skills.context import Registries, RunContext
        from pytest_skills.formats import files

        # Skills and context files reached through a symlink must stay in the project.
        self._previous_root = files.set_project_root(self.config.rootpath)
        judge = JudgeCheck(self.settings.judge_model, self.calls.ask)
        return RunContext(
            settings=self.settings,
            calls=self.calls,
            redact=self.redact,
            registries=Registries(judge, self.settings.sandbox_policy),
            judge=judge,
            arm_prompts=ArmPrompts(self.config.rootpath, self.settings.skill_catalog),
        )

    # --- configure ----------------------------------------------------------------------

    def check_providers(self) -> None:
        """Refuse, once and before anything runs, a model whose provider nothing serves."""
        specs = [*self.settings.models, *filter(None, [self.settings.judge_model])]
        if not specs:
            return
        from pytest_skills.backends.provision import UnknownProviderError

        try:
            self.backends.check(specs)
        except UnknownProviderError as error:
            raise pytest.UsageError(f"pytest-skills: {error.message}") from None

    def _backend_from_hook(self, spec: ModelSpec) -> Backend | None:
        backend: Backend | None = self.config.hook.pytest_skills_make_backend(
            spec=spec, config=self.config
        )
        return backend

    def announce(self, message: str) -> None:
        """A line in the terminal, on its own."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and self.config.option.verbose > -2:
            reporter.ensure_newline()
            reporter.write_line(f"skills: {self.redact(message)}")

    # --- collect ------------------------------------------------------------------------

    def first_sight(self, path: Path) -> bool:
        """True the first time a file is seen: a directory symlink that loops back (or
        two links to one directory) must not collect the same cases again."""
        real = path.resolve()
        if real in self._collected:
            return False
        self._collected.add(real)
        return True

    # --- run ----------------------------------------------------------------------------

    def start(
        self,
        items: Sequence[Hashable],
        plan: Callable[[Hashable], Sequence[Call]],
        followups: Callable[[Hashable], Sequence[Call] | None],
    ) -> None:
        """The items to run, in order: their calls will be made just ahead of them.

        An xdist worker is handed its items one at a time and cannot know which come
        next beyond one; it plans from the item it runs and the next (see :meth:`before`).
        """
        if self.settings.trials_max is not None:
            self._take_trials(items)
        if self.settings.batch:
            self._batch(items, plan)
        if not is_xdist_worker(self.config):
            self._window = self.calls.window(items, plan, followups)

    def _batch(self, items: Sequence[Hashable], plan: Callable[[Hashable], Sequence[Call]]) -> None:
        """``--skill-batch``: collect ended batches, send what is left as new ones, and
        skip the items whose answers are still out. Every xdist worker plans every item
        and does this under the ledger's lock, so the first sends and the others find
        the batch it sent."""
        from pytest_skills.execution.batch_ledger import Ledger
        from pytest_skills.execution.batching import BatchPhase

        runner = self.calls.runner

        def still_missing(asked: Sequence[Call]) -> list[Call]:
            runner.replay(asked)
            return [call for call in asked if runner.finished(call) is None]

        phase = BatchPhase(
            cache=self.calls.cache,
            ledger=Ledger(self.settings.cache_dir),
            client_for=self._batch_client,
            still_missing=still_missing,
            announce=self.announce,
            wait=self.settings.batch_wait,
            poll=self.settings.batch_poll,
        )
        held = phase.run(still_missing([call for item in items for call in plan(item)]))
        runner.hold(held)
        waiting = {call.request.key: o for call, o in held if o.kind and o.kind.batched}
        for item in items:
            self._skip_if_waiting(item, plan(item), waiting)

    @staticmethod
    def _skip_if_waiting(item: Any, calls: Sequence[Call], waiting: Mapping[str, Any]) -> None:
        """Skip ``item``, at its own location, when a batch holds (or lost) an answer of
        it, with a note per such call for the summary."""
        from pytest_skills.report.batches import BatchNote
        from pytest_skills.stash import BATCH_NOTES_KEY

        outcomes = [waiting[call.request.key] for call in calls if call.request.key in waiting]
        if not outcomes or not isinstance(item, pytest.Item):
            return
        model = calls[0].spec.name
        item.stash[BATCH_NOTES_KEY] = tuple(
            BatchNote(o.batch or "", model, o.kind, o.error or "") for o in outcomes
        )
        item.add_marker(pytest.mark.skip(reason=outcomes[0].error or "waiting for a batch"))

    def _batch_client(self, spec: ModelSpec) -> BatchClient | None:
        from pytest_skills.backends.batches import BatchClient

        backend = self.calls.runner.backend(spec)
        client = getattr(backend, "batches", None)
        return client if isinstance(client, BatchClient) else None

    def _take_trials(self, items: Sequence[Any]) -> None:
        """``--skill-trials auto``: the rounds of trials, before the items run. Under
        xdist every worker takes the same rounds (the answers are the same), so the
        figures agree; calls two workers make at once may be paid twice."""
        from pytest_skills.execution.sequential_trials import by_model, take_trials

        takers = [i for i in items if getattr(i, "case_outcome", None) and i.planned]
        grouped = by_model(takers, lambda item: item.spec.name)  # type: ignore[attr-defined]
        assert self.settings.trials_max is not None
        stopped = take_trials(grouped, self.settings.trials_max, self.calls.submit)
        self.sequential = [line.text for line in stopped]

    def plan_lines(self, items: Sequence[Any]) -> list[str]:
        """The plan of the selected items (no call is made); see :mod:`.planning`."""
        from pytest_skills.backends.batches import batch_api
        from pytest_skills.planning import PlannedCase, plan_models

        calls = [call for item in items for call in item.planned]
        self.calls.runner.replay(calls)  # what the cache holds answers now, for free
        cases = [
            PlannedCase(
                item.spec.name,
                item.spec.resolved,
                item.planned,
                item.recorded_grades(),
                batch=self.settings.batch and batch_api(item.spec) is not None,
            )
            for item in items
            if item.spec is not None
        ]
        self._plans = plan_models(cases, self.settings.trials, self.calls.finished)
        return [line for plan in self._plans for line in plan.lines()]

    def export_batches(self, items: Sequence[Any]) -> bool:
        """``--skill-batch-export DIR``: the calls the cache cannot answer, written as
        batch files for vLLM's run-batch; nothing runs."""
        from pytest_skills.execution.batch_files import BatchFileError, export
        from pytest_skills.execution.batch_ledger import Ledger

        calls = [call for item in items for call in item.planned]
        runner = self.calls.runner
        runner.replay(calls)
        missing = [call for call in calls if runner.finished(call) is None]
        directory = self.config.invocation_params.dir / self.config.option.skill_batch_export
        try:
            lines = export(missing, directory, Ledger(self.settings.cache_dir))
        except BatchFileError as error:
            raise pytest.UsageError(f"pytest-skills: {error}") from None
        for line in lines:
            self.announce(line)
        return True

    def refuse_over_budget(self, items: Sequence[Any]) -> str | None:
        """Why the live run must not start (``--skill-max-cost``), or None."""
        from pytest_skills.planning import over_budget

        if self.settings.max_cost is None:
            return None
        self.plan_lines(items)
        return over_budget(self._plans, self.settings.max_cost)

    def before(self, item: Hashable, upcoming: Sequence[Call]) -> None:
        """``item`` is about to run; ``upcoming``: the calls of it and of the next item."""
        if self._window is not None:
            self._window.before(item)
        elif upcoming:
            self.calls.submit(upcoming)

    def keep(self, record: ItemRecord) -> None:
        self.records.append(record)

    @property
    def record_property_read(self) -> bool:
        """Whether anything reads the whole record from the reports: the controller
        (from an xdist worker's) or JUnit XML. Otherwise it is a kilobyte per item
        that nobody reads; the run keeps its records typed."""
        return is_xdist_worker(self.config) or bool(getattr(self.config.option, "xmlpath", None))

    # --- finish -------------------------------------------------------------------------

    def finish(self, session: pytest.Session) -> list[str]:
        """Figures, outputs and gates once every item ran; the lines to say about them."""
        s = self.settings
        if not self.records and not (s.report_path or s.html_path or s.workspace_dir):
            return []  # no skill test ran and no report was asked for
        from pytest_skills.report.outputs import write_outputs
        from pytest_skills.report.summary import summarise_run

        summary = self.summary = summarise_run(self.records, self.settings)
        written = write_outputs(summary, self.records, self.settings, self.redact)
        if (summary.gates or any(w.error for w in written)) and (
            session.exitstatus == pytest.ExitCode.OK
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.whole_suite = self._ran_whole_suite(session)
        if self.whole_suite:
            self._find_unused()
        self.written = [w.line for w in written]
        return self.written

    def _ran_whole_suite(self, session: pytest.Session) -> bool:
        """Unused entries mean something only when nothing was left out of the run."""
        option = session.config.option
        narrowed = any(
            (
                self.deselected,
                getattr(option, "keyword", ""),
                getattr(option, "markexpr", ""),
                getattr(option, "lf", False),
                getattr(option, "maxfail", 0),
                session.shouldstop,
                session.shouldfail,
                # Items a batch holds ran nothing: their recorded answers are not unused.
                self.batch_notes,
            )
        )
        return bool(self.records) and not narrowed and self.settings.cache_mode != "off"

    def _find_unused(self) -> None:
        from pytest_skills.execution.cache import CacheError, ResponseCache
        from pytest_skills.execution.pruning import unused_entries

        # A prune cleans the cache: one that is not ours is rebuilt before it is read,
        # and it is written to (a replay's own cache is read-only).
        store = self.calls.cache
        if self.settings.cache_prune:
            store = ResponseCache(
                self.settings.cache_dir,
                secrets=self.redact.secrets,
                rebuild_untrusted=True,
                announce=self.announce,
            )
        try:
            unused = unused_entries(store, self.records, self.settings.models)
            if unused and self.settings.cache_prune:
                store.delete(unused)
        except CacheError:
            return
        finally:
            if store is not self.calls.cache:
                with contextlib.suppress(CacheError):
                    store.close()
        self.unused_keys = unused

    def summary_lines(self, verbose: bool) -> list[str]:
        """The ``skills`` section of the terminal summary."""
        calls: CallService | None = self.__dict__.get("calls")
        if calls is None and not self.records and not self.written and not self.batch_notes:
            return []  # nothing asked, nothing to say
        from pytest_skills.report import terminal
        from pytest_skills.report.summary import summarise_run
        from pytest_skills.report.text import printable

        lines: list[str] = []
        progress = calls.progress if calls is not None else None
        if progress is not None and progress.total:
            # By arm only when comparing versions or controls: "24 live (skill), 24 from
            # the cache (ref:main)"; the default pair needs no breakdown.
            arms = [arm.name for arm in self.settings.arms]
            shown = arms if self.settings.arms != DEFAULT_ARMS else []
            lines.append(terminal.progress_text(progress, shown))
        if self.records:
            summary = self.summary or summarise_run(self.records, self.settings)
            lines += terminal.table(summary.models, verbose=verbose, records=self.records)
            # A parameter a server refused is adapted for the rest of the run: said once.
            lines += [f"skills: {m.model}: {note}" for m in summary.models for note in m.adapted]
            lines += terminal.problem_lines(summary.problems)
            lines += [f"skills: {text}" for text in self.sequential]
            if summary.aa is not None:
                lines.append(f"skills: {summary.aa.text}")
        if self.batch_notes or self.settings.batch:
            from pytest_skills.report.batches import batch_lines

            lines += batch_lines(self.batch_notes, self.records)
        narrowed = self.records and self.settings.cache_mode != "off" and not self.whole_suite
        if self.settings.cache_prune and narrowed:
            lines.append(
                "skills: --skill-cache-prune removed nothing: it needs a run of the whole "
                "suite (this one was narrowed by -k, -m, --lf, deselection, -x, a stop or "
                "items waiting for a batch)"
            )
        if self.unused_keys:
            verb = "removed" if self.settings.cache_prune else "unused by this run"
            hint = "" if self.settings.cache_prune else "; --skill-cache-prune removes them"
            lines.append(f"skills: {len(self.unused_keys)} cache entries {verb}{hint}")
        unrecorded = calls.unrecorded if calls is not None else None
        if unrecorded is not None:
            lines.append(f"skills: {unrecorded[0]} answer(s) not recorded: {unrecorded[1]}")
        if self.summary is not None:
            lines += [f"skills: GATE FAILED: {message}" for message in self.summary.gates]
        lines += self.written
        # Answers and ids are untrusted: no escape sequence reaches the terminal.
        return [printable(self.redact(line)) for line in lines]

    def close(self) -> None:
        if "calls" in self.__dict__:
            self.calls.close()
        if "context" in self.__dict__:
            from pytest_skills.formats import files

            files.set_project_root(self._previous_root)  # an in-process run's caller's


class WorkerRecords:
    """Registered on the controller: under xdist, the records of the workers' items
    arrive on their reports, as JSON (in one process they were kept, typed, when the
    report was made)."""

    def __init__(self, run: SkillSession) -> None:
        self.run = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.user_properties or not is_xdist_controller(self.run.config):
            return
        from pytest_skills.report.batches import BATCH_PROPERTY, notes_from_property
        from pytest_skills.report.records import from_properties

        if report.when == "call":
            record = from_properties(report.user_properties)
            if record is not None:
                self.run.keep(record)
        for name, value in report.user_properties:
            if name == BATCH_PROPERTY:  # on the setup report of an item a batch skips
                self.run.batch_notes.extend(notes_from_property(value))
            elif name == SEQUENTIAL_PROPERTY and isinstance(value, list):
                # Every worker took the same rounds: the first to say so is heard.
                texts = [str(text) for text in value]
                self.run.sequential = self.run.sequential or texts
