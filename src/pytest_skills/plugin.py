"""pytest entry point: thin hooks that delegate to :class:`~pytest_skills.session.SkillRun`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pytest_skills import fixture, hookspecs
from pytest_skills.backends import Backend
from pytest_skills.backends.builtin import make_builtin_backend
from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.fixture import skill_model  # noqa: F401  (the fixture, found by pytest here)
from pytest_skills.formats import FormatError, Source, files, is_skill_test_file, open_source
from pytest_skills.models import ModelSpec
from pytest_skills.nodes import (
    NOT_COLLECTED_KEY,
    RECORD_KEY,
    SkillFile,
    SkillItem,
    is_scenario_dir,
    not_collected_lines,
    user_ignored,
)
from pytest_skills.report.records import to_properties
from pytest_skills.session import RUN_KEY, SkillRun, is_xdist_worker
from pytest_skills.settings import SETTINGS_KEY, add_options, models_list, resolve
from pytest_skills.xdist_queue import queued_items

_PREVIOUS_ROOT_KEY = pytest.StashKey[Path | None]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_skills_register_checks(registry: CheckRegistry) -> None:
    register_builtin_checks(registry)


@pytest.hookimpl(trylast=True)
def pytest_skills_make_backend(spec: ModelSpec, config: pytest.Config) -> Backend | None:
    return make_builtin_backend(spec, config.stash[RUN_KEY].backend_options)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "skill(path=None): an agent skill test run by pytest-skills; with a path (relative to "
        "the test file), the skill that the skill_model fixture asks with",
    )
    settings = config.stash[SETTINGS_KEY] = resolve(config)
    # Skills and context files reached through a symlink must stay in the project.
    config.stash[_PREVIOUS_ROOT_KEY] = files.set_project_root(config.rootpath)
    registry = CheckRegistry()
    config.hook.pytest_skills_register_checks(registry=registry)
    run = config.stash[RUN_KEY] = SkillRun(config, settings, registry)
    config.stash[fixture.CONTEXT_KEY] = run.context
    if not config.option.skill_models_list:
        run.check_providers()
    if not is_xdist_worker(config):
        # Only the controller aggregates; it sees every worker's reports through this.
        config.pluginmanager.register(run, "pytest-skills-run")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _PREVIOUS_ROOT_KEY in config.stash:  # an in-process run (pytester) restores its caller's
        files.set_project_root(config.stash[_PREVIOUS_ROOT_KEY])


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.skill_models_list:
        for line in models_list(config, resolve(config)):
            print(line)
        return 0
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash[RUN_KEY].header()


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
    except FormatError as error:
        opened = error
    if opened is None:  # named like a skill test file, holding no cases: not ours
        parent.config.stash.setdefault(NOT_COLLECTED_KEY, []).append(file_path)
        return None
    return SkillFile.from_parent(parent, path=file_path, context=run.context, source=opened)


def pytest_report_collectionfinish(config: pytest.Config, start_path: Path) -> list[str]:
    if config.option.verbose <= 0:
        return []
    return not_collected_lines(config.stash.get(NOT_COLLECTED_KEY, []), start_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fixture.parametrize(metafunc, metafunc.config.stash[SETTINGS_KEY].models)


def pytest_itemcollected(item: pytest.Item) -> None:
    fixture.mark(item, item.config.stash[SETTINGS_KEY].models)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Outermost, so the report's outcome is final (xfail applied) when the record is made.
    report = yield
    run = item.config.stash[RUN_KEY]
    if item.get_closest_marker("skill") is not None:
        run.redact_report(report)
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    # After deselection (-k, -m, --lf) and before any item runs: plan and execute the
    # calls of the selected items. Under xdist the controller holds no items; each
    # worker fetches for its own queue in pytest_runtest_setup instead.
    if session.config.option.collectonly or is_xdist_worker(session.config):
        return
    run = session.config.stash[RUN_KEY]
    items = [item for item in session.items if isinstance(item, SkillItem)]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    run.execute([call for item in items for _, call in item.calls], reporter)
    run.execute(run.gradings((item.check, call) for item in items for _, call in item.calls))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if isinstance(item, SkillItem) and item.calls and is_xdist_worker(item.config):
        queued = queued_items(item.config, item)
        item.config.stash[RUN_KEY].prefetch(
            call
            for queued_item in queued
            if isinstance(queued_item, SkillItem)
            for _, call in queued_item.calls
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash[RUN_KEY]
    if not is_xdist_worker(session.config):
        run.finish(session)
    run.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    config = terminalreporter.config
    if is_xdist_worker(config) or config.option.verbose <= -2:
        return
    config.stash[RUN_KEY].summary(terminalreporter)
