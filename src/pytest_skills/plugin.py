"""pytest entry point: thin hooks that hand off to :class:`~pytest_skills.session.SkillSession`.

Every pytest run of a project that installs the plugin imports this module and calls
these hooks, skill tests or not; so it imports only what those runs need (options,
settings, file names). Collecting a skill file, asking a model or writing a report
loads the rest when it happens (``benchmarks/bench_startup.py`` measures the cost).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pytest_skills.hookspecs as hookspecs
from pytest_skills.discovery import (
    is_scenario_dir,
    is_skill_test_file,
    is_trigger_file,
    user_ignored,
)
from pytest_skills.path_trap import warn_if_trapped
from pytest_skills.session import (
    RUN_KEY,
    SEQUENTIAL_PROPERTY,
    SkillSession,
    WorkerRecords,
    is_xdist_worker,
)
from pytest_skills.settings import NO_MODEL_REASON, SETTINGS_KEY, add_options, resolve
from pytest_skills.stash import (
    BATCH_NOTES_KEY,
    FIXTURE,
    MARKER,
    NOT_COLLECTED_KEY,
    RECORD_KEY,
    TRIGGER_SPLITS,
)

if TYPE_CHECKING:
    from pytest_skills.backends import Backend
    from pytest_skills.checks import CheckRegistry
    from pytest_skills.execution.runner import Call
    from pytest_skills.fixture import SkillModel
    from pytest_skills.formats import FormatError, Source
    from pytest_skills.models import ModelSpec

SECTION = "skills"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_skills_register_checks(registry: CheckRegistry) -> None:
    from pytest_skills.checks import register_builtin_checks

    register_builtin_checks(registry)


@pytest.hookimpl(trylast=True)
def pytest_skills_make_backend(spec: ModelSpec, config: pytest.Config) -> Backend | None:
    from pytest_skills.backends.builtin import make_builtin_backend

    settings = config.stash[SETTINGS_KEY]
    options = dataclasses.replace(settings.backend_options, announce=config.stash[RUN_KEY].announce)
    return make_builtin_backend(spec, options)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "skill(path=None): an agent skill test run by pytest-skills; with a path (relative to "
        "the test file), the skill that the skill_model fixture asks with",
    )
    warn_if_trapped(config)
    for split in TRIGGER_SPLITS:
        config.addinivalue_line(
            "markers", f"skill_trigger_{split}: a trigger-eval query of the file's {split} split"
        )
    settings = config.stash[SETTINGS_KEY] = resolve(config)
    run = config.stash[RUN_KEY] = SkillSession(config, settings)
    if not config.option.skill_models_list:
        run.check_providers()
    if not is_xdist_worker(config):
        config.pluginmanager.register(WorkerRecords(run), "pytest-skills-worker-records")


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.skill_init is not None:
        from pytest_skills.init_file import init_command

        return init_command(config)
    if config.option.skill_batch_import:
        from pytest_skills.cache_commands import batch_import_command

        return batch_import_command(config)
    if config.option.skill_cache_dump is not None:
        from pytest_skills.cache_commands import dump_command

        return dump_command(config)
    if config.option.skill_cache_merge:
        from pytest_skills.cache_commands import merge_command

        return merge_command(config)
    if config.option.skill_models_list:
        from pytest_skills.settings import models_list

        for line in models_list(config, resolve(config)):
            print(line)
        return 0
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    # A base URL may carry a token in its query string.
    from pytest_skills.arms import DEFAULT_ARMS
    from pytest_skills.report.header import header_lines

    run, settings = config.stash[RUN_KEY], config.stash[SETTINGS_KEY]
    lines = header_lines(settings)
    if settings.arms != DEFAULT_ARMS:
        lines += [f"skills: {line}" for line in run.context.arm_prompts.problems(settings.arms)]
    return [run.redact(line) for line in lines]


@pytest.hookimpl(wrapper=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> Any:
    ignored = yield
    # norecursedirs skips dot-directories, but upskill keeps its manifest in .upskill/.
    if ignored and is_scenario_dir(collection_path):
        named = config.getoption("ignore") or [], config.getoption("ignore_glob") or []
        if not user_ignored(collection_path, *named):
            return False
    return ignored


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_trigger_file(file_path):  # the on-demand harness asks its queries
        from pytest_skills.trigger_nodes import TriggerFile

        trigger_run = parent.config.stash[RUN_KEY]
        if not trigger_run.first_sight(file_path):
            return None
        return TriggerFile.from_parent(parent, path=file_path, context=trigger_run.context)
    if not is_skill_test_file(file_path):
        return None
    from pytest_skills.formats import ForeignFileError, FormatError, open_source
    from pytest_skills.formats.notices import Notice
    from pytest_skills.nodes import SkillFile, warn_at

    run = parent.config.stash[RUN_KEY]
    if not run.first_sight(file_path):  # reached again through a symlink loop
        return None
    try:
        opened: Source | FormatError | None = open_source(file_path)
    except ForeignFileError as error:  # another tool's broken file: say so, collect nothing
        warn_at(file_path, Notice(error.message, error.line))
        opened = None
    except FormatError as error:
        opened = error
    if opened is None:  # named like a skill test file, holding no cases: not ours
        parent.config.stash.setdefault(NOT_COLLECTED_KEY, []).append(file_path)
        return None
    return SkillFile.from_parent(parent, path=file_path, context=run.context, source=opened)


def pytest_report_collectionfinish(config: pytest.Config, start_path: Path) -> list[str]:
    if config.option.verbose <= 0:
        return []
    not_collected: list[Path] = config.stash.get(NOT_COLLECTED_KEY, [])
    if not not_collected:
        return []
    from pytest_skills.nodes import not_collected_lines

    return not_collected_lines(not_collected, start_path)


@pytest.fixture
def skill_model(request: pytest.FixtureRequest) -> SkillModel:
    """A configured model; ``skill_model.ask(prompt, skill=..., baseline=...)``."""
    from pytest_skills.fixture import make_skill_model

    return make_skill_model(request, request.config.stash[RUN_KEY].context)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One test per configured model, with the model's name as the id.
    models = metafunc.config.stash[SETTINGS_KEY].models
    if FIXTURE in metafunc.fixturenames and models:
        params = [pytest.param(spec, id=spec.name) for spec in models]
        metafunc.parametrize(FIXTURE, params, indirect=True)


def pytest_itemcollected(item: pytest.Item) -> None:
    # Tests that ask models are skill tests (-m "not skill"); skipped without a model.
    if FIXTURE in getattr(item, "fixturenames", ()):
        item.add_marker(MARKER)
        if not item.config.stash[SETTINGS_KEY].models:
            item.add_marker(pytest.mark.skip(reason=NO_MODEL_REASON))


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    if items:
        items[0].config.stash[RUN_KEY].deselected += len(items)


def _plan(item: Any) -> Sequence[Call]:
    """The calls a skill item will make (``SkillItem.planned``); none for other items."""
    planned: Sequence[Call] = getattr(item, "planned", ())
    return planned


def _followups(item: Any) -> Sequence[Call] | None:
    gradings = getattr(item, "gradings", None)
    return gradings() if callable(gradings) else ()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    # After deselection (-k, -m, --lf), before any item runs.
    if session.config.option.collectonly:
        return None
    run, settings = session.config.stash[RUN_KEY], session.config.stash[SETTINGS_KEY]
    skill_items = [item for item in session.items if getattr(item, "planned", None) is not None]
    if not skill_items and not settings.plan:
        return None  # nothing to plan: fixture tests ask as they run
    if session.config.option.skill_batch_export is not None:
        return run.export_batches(skill_items)
    if settings.plan:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "skills plan (no call made)", bold=True)
            for line in run.plan_lines(skill_items):
                reporter.write_line(line)
        return True  # nothing runs
    refused = run.refuse_over_budget(skill_items)
    if refused is not None:
        pytest.exit(f"pytest-skills: {refused}", returncode=pytest.ExitCode.USAGE_ERROR)
    run.start(session.items, _plan, _followups)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    upcoming = [*_plan(item), *_plan(nextitem)]
    item.config.stash[RUN_KEY].before(item, upcoming)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Outermost, so the report's outcome is final (xfail applied) when the record is made.
    report = yield
    run = item.config.stash[RUN_KEY]
    if report.longrepr is not None and item.get_closest_marker("skill") is not None:
        # What a test prints itself (``assert answer.text == ...``) may hold a key.
        text = str(report.longrepr)
        from pytest_skills.report.text import printable

        # Answers and ids are untrusted too: no escape sequence reaches the terminal.
        cleaned = printable(run.redact(text))
        if cleaned != text:
            report.longrepr = cleaned
    if report.when == "call" and run.sequential and not run.sequential_sent:
        # Where --skill-trials auto stopped, said once by each worker to the controller.
        run.sequential_sent = is_xdist_worker(item.config)
        if run.sequential_sent:
            report.user_properties.append((SEQUENTIAL_PROPERTY, run.sequential))
    # A batch's skip is decided before setup: its notes go on the first report made.
    notes = item.stash.get(BATCH_NOTES_KEY, ())
    if notes:
        del item.stash[BATCH_NOTES_KEY]
        from pytest_skills.report.batches import BATCH_PROPERTY

        report.user_properties.append((BATCH_PROPERTY, [note.to_json() for note in notes]))
        if not is_xdist_worker(item.config):
            run.batch_notes.extend(notes)
    record = item.stash.get(RECORD_KEY, None) if report.when == "call" else None
    if record is None and FIXTURE in getattr(item, "fixturenames", ()):
        from pytest_skills.fixture import record_of

        record = record_of(item, report)
    if record is not None and hasattr(report, "wasxfail"):
        record = dataclasses.replace(record, xfail=report.wasxfail)
    if record is not None:
        from pytest_skills.report.records import to_properties

        properties = to_properties(record, whole=run.record_property_read)
        # The call report was made from the item's properties already; the teardown
        # report, which JUnit XML reads them from, is made later from the item's.
        report.user_properties.extend(properties)
        item.user_properties.extend(properties)
        if not is_xdist_worker(item.config):
            run.keep(record)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash[RUN_KEY]
    if not is_xdist_worker(session.config):
        run.finish(session)
    run.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    config = terminalreporter.config
    if is_xdist_worker(config) or config.option.verbose <= -2:
        return
    lines = config.stash[RUN_KEY].summary_lines(verbose=config.option.verbose > 0)
    if lines:
        terminalreporter.write_sep("=", SECTION, bold=True)
        for line in lines:
            terminalreporter.write_line(line, red=line.startswith("skills: GATE"))
