"""Where verifier commands run: a minimal environment, limits, and nothing left behind.

A ``command`` verifier runs text a skill test file names on files a model wrote, in a
CI job that may hold API keys. So every command gets:

* **an environment without secrets**: ``PATH``, the locale, ``HOME`` set to its
  workspace, and only the variables the run names (``--skill-verifier-env NAME``);
* **resource limits**: CPU time, data memory, file size, processes;
* **an end for everything it starts**: on Linux a small reaper process (see
  :mod:`.reaper`) is its subreaper and kills every descendant when the command ends or
  times out, whatever the descendants do to their environment or session;
* **bubblewrap** where it works (``--skill-verifier-sandbox``: ``auto``, the default,
  uses it when ``bwrap`` runs here; ``bwrap`` demands it; ``none`` never uses it): no
  network, the file system read-only but for the workspace (and a private ``/tmp``),
  and a PID namespace of its own, which ends with the command.

docs/trust-model.md says what this protects against and what it does not.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_skills.errors import SkillsError

#: Kept from pytest's environment: none of them holds a secret.
BASE_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
#: Data memory (heap, anonymous mappings) per process.
DATA_LIMIT_BYTES = 4 * 2**30
#: The largest file a command may write.
FILE_LIMIT_BYTES = 256 * 2**20
#: Processes a command may add to what the user runs already.
PROCESS_LIMIT = 512
#: The most of a command's output kept (its tail): a command that prints without end
#: must not fill pytest's memory.
KEPT_OUTPUT_BYTES = 64 * 1024
#: How long the reaper gets to end a timed-out command before it is killed itself.
_GRACE_S = 10.0

_REAPER = Path(__file__).with_name("reaper.py")


class Isolation(enum.Enum):
    """What is in force for a command."""

    BWRAP = "bwrap"
    #: No sandbox tool: the reaper, the limits and the environment only.
    PROCESS = "process"
    #: Not Linux: the command's session is killed; a descendant that starts a session
    #: of its own escapes.
    SESSION = "session"


@dataclass(frozen=True)
class SandboxPolicy:
    """The run's choices for verifier commands."""

    mode: str = "auto"
    #: Variables passed through from pytest's environment, by name.
    pass_env: tuple[str, ...] = ()


class SandboxUnavailableError(SkillsError):
    """``--skill-verifier-sandbox bwrap`` where bubblewrap cannot run."""


_BWRAP_BASE = (
    "--unshare-all",
    "--die-with-parent",
    "--new-session",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--tmpfs",
    "/tmp",
)


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox a command here, or None when it can (checked once,
    by running ``bwrap ... true``)."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    path = shutil.which("bwrap")
    if path is None:
        return "bwrap is not installed (Debian and Ubuntu: apt-get install bubblewrap)"
    try:
        probe = subprocess.run(
            [path, *_BWRAP_BASE, "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", os.defpath)},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap did not run: {error}"
    if probe.returncode != 0:
        said = probe.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot make a sandbox here ({said[-1] if said else probe.returncode})"
    return None


def isolation(policy: SandboxPolicy) -> Isolation:
    """What a command runs in under ``policy``; SandboxUnavailableError when ``bwrap`` is
    demanded and cannot run."""
    if policy.mode != "none":
        problem = bwrap_problem()
        if problem is None:
            return Isolation.BWRAP
        if policy.mode == "bwrap":
            raise SandboxUnavailableError(
                f"--skill-verifier-sandbox bwrap: {problem}; install bubblewrap or choose "
                "--skill-verifier-sandbox auto"
            )
    return Isolation.PROCESS if sys.platform.startswith("linux") else Isolation.SESSION


def describe(policy: SandboxPolicy) -> str:
    """The header's line on what verifier commands run in."""
    passed = f"; variables passed: {', '.join(policy.pass_env)}" if policy.pass_env else ""
    try:
        kind = isolation(policy)
    except SandboxUnavailableError as error:
        return f"verifier commands cannot run: {error}"
    if kind is Isolation.BWRAP:
        return (
            "verifier commands run in bubblewrap: no network, only their workspace "
            f"writable, no secrets in their environment, nothing outlives them{passed}"
        )
    why = "--skill-verifier-sandbox none" if policy.mode == "none" else bwrap_problem()
    ends = (
        "nothing outlives them"
        if kind is Isolation.PROCESS
        else "their session is killed at the end (a new session escapes)"
    )
    return (
        f"verifier commands run without a sandbox ({why}): network and files as this "
        f"user; no secrets in their environment, limits, {ends}{passed}"
    )


def environment(policy: SandboxPolicy, workspace: Path) -> dict[str, str]:
    """A command's whole environment: no variable reaches it unless named."""
    env = {name: os.environ[name] for name in BASE_VARIABLES if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env["HOME"] = str(workspace)
    for name in policy.pass_env:
        value = os.environ.get(name)
        if value is not None:
            env[name] = value
    return env


def _limits(timeout: float) -> str:
    return json.dumps(
        {
            # CPU time beyond the wall-clock timeout cannot be spent anyway.
            "cpu_s": max(1, math.ceil(timeout)) + 1,
            "data_bytes": DATA_LIMIT_BYTES,
            "file_bytes": FILE_LIMIT_BYTES,
            "processes": PROCESS_LIMIT,
        }
    )


def _argv(
    command: str | Sequence[str], kind: Isolation, workspace: Path, timeout: float
) -> list[str]:
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    if kind is Isolation.BWRAP:
        bwrap = shutil.which("bwrap") or "bwrap"
        where = str(workspace)
        argv = [
            bwrap,
            *_BWRAP_BASE,
            *_python_under_tmp(),
            *("--bind", where, where, "--chdir", where, "--"),
            *argv,
        ]
    if kind is Isolation.SESSION:
        return argv
    return [sys.executable, "-I", "-S", str(_REAPER), _limits(timeout), str(os.getpid()), *argv]


def _python_under_tmp() -> list[str]:
    """Read-only binds for the Python running pytest when it lives under /tmp (a CI's
    throwaway venv), which the sandbox's private /tmp would hide: verifiers run it."""
    binds: list[str] = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, sys.exec_prefix]):
        real = os.path.realpath(prefix)
        if real == "/tmp" or real.startswith("/tmp/"):
            binds += ["--ro-bind", real, real]
    return binds


class _Tail(threading.Thread):
    """Reads a pipe to its end, keeping the last :data:`KEPT_OUTPUT_BYTES`."""

    def __init__(self, pipe: object) -> None:
        super().__init__(daemon=True, name="pytest-skills-verifier-output")
        self.pipe = pipe
        self.kept = bytearray()

    def run(self) -> None:
        read = self.pipe.read1  # type: ignore[attr-defined]
        while chunk := read(65536):
            self.kept += chunk
            if len(self.kept) > 2 * KEPT_OUTPUT_BYTES:
                del self.kept[:-KEPT_OUTPUT_BYTES]

    def text(self) -> str:
        return bytes(self.kept[-KEPT_OUTPUT_BYTES:]).decode("utf-8", "replace")


def run(
    command: str | Sequence[str], workspace: Path, timeout: float, policy: SandboxPolicy
) -> tuple[int | None, str]:
    """Exit status (None on timeout) and output tail of ``command`` run in ``workspace``.

    When it returns, nothing the command started is running.
    """
    try:
        kind = isolation(policy)
    except SandboxUnavailableError as error:
        return -1, str(error)
    argv = _argv(command, kind, workspace, timeout)
    try:
        process = subprocess.Popen(
            argv,
            cwd=workspace,
            env=environment(policy, workspace),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=os.name == "posix",
        )
    except (OSError, ValueError) as error:  # ValueError: a NUL in a command from a plugin
        return -1, f"cannot start the command: {error}"
    tail = _Tail(process.stdout)
    tail.start()
    status: int | None
    try:
        status = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end(process, kind)
        status = None
    except BaseException:
        _end(process, kind)
        raise
    # The reaper ended every descendant, so the pipe is closed; a bounded join all the
    # same, for a SESSION-kind descendant that escaped and holds it.
    tail.join(_GRACE_S)
    if process.stdout is not None and tail.is_alive():
        process.stdout.close()
    return status, tail.text()


def _end(process: subprocess.Popen[bytes], kind: Isolation) -> None:
    """End a command that ran out of time (or pytest was interrupted)."""
    if kind is not Isolation.SESSION:
        # The reaper kills every descendant, then exits.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            pass
    if os.name == "posix":
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
    process.kill()
    process.wait()
