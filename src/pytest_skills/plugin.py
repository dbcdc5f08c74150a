"""pytest entry point: thin hooks that hand off to :class:`~pytest_skills.session.SkillSession`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import pytest_skills.fixture as fixture
import pytest_skills.hookspecs as hookspecs
from pytest_skills.backends import Backend
from pytest_skills.backends.builtin import make_builtin_backend
from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.execution.runner import Call
from pytest_skills.fixture import skill_model  # noqa: F401  (the fixture, found by pytest here)
from pytest_skills.formats import (
    ForeignFile,
    FormatError,
    Source,
    is_skill_test_file,
    open_source,
)
from pytest_skills.formats.notices import Notice
from pytest_skills.init_file import init_command
from pytest_skills.models import ModelSpec
from pytest_skills.nodes import (
    NOT_COLLECTED_KEY,
    RECORD_KEY,
    SkillFile,
    SkillItem,
    is_scenario_dir,
    not_collected_lines,
    user_ignored,
    warn_at,
)
from pytest_skills.path_trap import warn_if_trapped
from pytest_skills.report.header import header_lines
from pytest_skills.report.records import to_properties
from pytest_skills.session import RUN_KEY, SkillSession, WorkerRecords, is_xdist_worker
from pytest_skills.settings import SETTINGS_KEY, add_options, models_list, resolve

SECTION = "skills"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_skills_register_checks(registry: CheckRegistry) -> None:
    register_builtin_checks(registry)


@pytest.hookimpl(trylast=True)
def pytest_skills_make_backend(spec: ModelSpec, config: pytest.Config) -> Backend | None:
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
    settings = config.stash[SETTINGS_KEY] = resolve(config)
    run = config.stash[RUN_KEY] = SkillSession(config, settings)
    config.stash[fixture.CONTEXT_KEY] = run.context
    if not config.option.skill_models_list:
        run.check_providers()
    if not is_xdist_worker(config):
        config.pluginmanager.register(WorkerRecords(run), "pytest-skills-worker-records")


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.skill_init is not None:
        return init_command(config)
    if config.option.skill_models_list:
        for line in models_list(config, resolve(config)):
            print(line)
        return 0
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    # A base URL may carry a token in its query string.
    run, settings = config.stash[RUN_KEY], config.stash[SETTINGS_KEY]
    lines = header_lines(settings)
    lines += [f"skills: {line}" for line in run.context.arm_prompts.problems(settings.arms)]
    return [run.redact(line) for line in lines]


@pytest.hookimpl(wrapper=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> Any:
    ignored = yield
    # norecursedirs skips dot-directories, but upskill keeps its manifest in .upskill/.
    if ignored and is_scenario_dir(collection_path) and not user_ignored(collection_path, config):
        return False
    return ignored


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not is_skill_test_file(file_path):
        return None
    run = parent.config.stash[RUN_KEY]
    if not run.first_sight(file_path):  # reached again through a symlink loop
        return None
    try:
        opened: Source | FormatError | None = open_source(file_path)
    except ForeignFile as error:  # another tool's broken file: say so, collect nothing
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
    return not_collected_lines(not_collected, start_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fixture.parametrize(metafunc, metafunc.config.stash[SETTINGS_KEY].models)


def pytest_itemcollected(item: pytest.Item) -> None:
    fixture.mark(item, item.config.stash[SETTINGS_KEY].models)


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    if items:
        items[0].config.stash[RUN_KEY].deselected += len(items)


def _plan(item: Any) -> Sequence[Call]:
    return item.planned if isinstance(item, SkillItem) else ()


def _followups(item: Any) -> Sequence[Call] | None:
    return item.gradings() if isinstance(item, SkillItem) else ()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    # After deselection (-k, -m, --lf), before any item runs.
    if not session.config.option.collectonly:
        session.config.stash[RUN_KEY].start(session.items, _plan, _followups)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    upcoming = [*_plan(item), *_plan(nextitem)]
    item.config.stash[RUN_KEY].before(item, upcoming)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Outermost, so the report's outcome is final (xfail applied) when the record is made.
    report = yield
    run = item.config.stash[RUN_KEY]
    if item.get_closest_marker("skill") is not None and report.longrepr is not None:
        # What a test prints itself (``assert answer.text == ...``) may hold a key.
        text = str(report.longrepr)
        if run.redact(text) != text:
            report.longrepr = run.redact(text)
    record = item.stash.get(RECORD_KEY, None) if report.when == "call" else None
    record = record or fixture.record_of(item, report)
    if record is not None and hasattr(report, "wasxfail"):
        record = dataclasses.replace(record, xfail=report.wasxfail)
    if record is not None:
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
