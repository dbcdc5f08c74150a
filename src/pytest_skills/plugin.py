"""pytest entry point: thin hooks that delegate to :class:`~pytest_skills.session.SkillRun`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_skills import fixture, hookspecs, judge
from pytest_skills.backends import Backend, make_builtin_backend
from pytest_skills.checks import CheckRegistry, register_builtin_checks
from pytest_skills.fixture import skill_model  # noqa: F401  (the fixture, found by pytest here)
from pytest_skills.judge import register_judge_check
from pytest_skills.models import ModelSpec
from pytest_skills.nodes import SkillFile, SkillItem
from pytest_skills.session import RUN_KEY, SkillRun, is_xdist_worker
from pytest_skills.settings import SETTINGS_KEY, add_options, resolve
from pytest_skills.spec import is_evals_file

SKILL_FILE_NAMES = ("skill_meta.json",)
SKILL_FILE_SUFFIXES = (".skill.yaml", ".skill.yml")
JUDGE_KEY = pytest.StashKey[judge.JudgeCheck | None]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_skills_register_checks(registry: CheckRegistry) -> None:
    register_builtin_checks(registry)


@pytest.hookimpl(trylast=True)
def pytest_skills_make_backend(spec: ModelSpec, config: pytest.Config) -> Backend | None:
    return make_builtin_backend(spec, config.stash[SETTINGS_KEY])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "skill(path=None): an agent skill test run by pytest-skills; with a path (relative to "
        "the test file), the skill that the skill_model fixture asks with",
    )
    settings = resolve(config)
    config.stash[SETTINGS_KEY] = settings
    registry = CheckRegistry()
    config.hook.pytest_skills_register_checks(registry=registry)
    run = SkillRun(config, settings, registry)
    # After the hook, so a plugin's own 'judge' wins; the built-in one needs the run.
    config.stash[JUDGE_KEY] = register_judge_check(registry, run)
    config.stash[RUN_KEY] = run
    if not is_xdist_worker(config):
        # Only the controller aggregates; it sees every worker's reports through this.
        config.pluginmanager.register(run, "pytest-skills-run")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash[RUN_KEY].header()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if (
        file_path.name in SKILL_FILE_NAMES
        or file_path.name.endswith(SKILL_FILE_SUFFIXES)
        or is_evals_file(file_path)
    ):
        return SkillFile.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fixture.parametrize(metafunc, metafunc.config.stash[RUN_KEY])


def pytest_itemcollected(item: pytest.Item) -> None:
    fixture.mark(item, item.config.stash[RUN_KEY])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Outermost, so the report's outcome is final (xfail applied) when the record is made.
    report = yield
    fixture.attach_record(item, report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    # After deselection (-k, -m, --lf) and before any item runs: plan and execute the
    # calls of the selected items. Under xdist the controller holds no items; each
    # worker fetches for its own queue in pytest_runtest_setup instead.
    if session.config.option.collectonly or is_xdist_worker(session.config):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    session.config.stash[RUN_KEY].execute(session.items, reporter)
    judge.prefetch(session.config.stash[JUDGE_KEY], session.items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if isinstance(item, SkillItem) and item.spec is not None and is_xdist_worker(item.config):
        item.config.stash[RUN_KEY].prefetch(item)


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
