"""Run one verifier command and end everything it starts (Linux; stdlib only).

Started as ``python -I -S reaper.py LIMITS_JSON PARENT_PID COMMAND...`` in a session of
its own with the command's minimal environment, it:

* becomes a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``), so a descendant
  that detaches (``setsid``, a double fork, a cleared environment) is reparented to
  it rather than to init, and stays findable as its descendant;
* asks for SIGTERM when pytest dies (``PR_SET_PDEATHSIG``), and on SIGTERM (pytest's
  timeout, pytest's death) kills every descendant;
* sets the resource limits, which the command inherits;
* runs the command, and when it ends kills whatever it left behind, so the pipe its
  output goes to closes and nothing outlives the check;
* exits as the command did (the same exit status, or the same signal).

It imports nothing from pytest-skills: it is run as a file, in isolated mode, with
no site-packages, so it starts quickly and a project's modules cannot change it.
A descendant running as the same user could still kill this process and so escape;
bubblewrap's PID namespace (``--skill-verifier-sandbox``) closes that gap.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: Rounds of "find descendants, kill them, reap" before giving up on a fork storm.
MAX_ROUNDS = 2000


class _Stop(Exception):
    """Raised by the SIGTERM handler: stop waiting and clean up."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _parents() -> dict[int, int]:
    """Every visible process's parent, from /proc/PID/stat."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:  # gone meanwhile
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            parents[int(name)] = int(fields[1])
    return parents


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _reap_all() -> bool:
    """Reap finished children; True when none are left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False


def _kill_everything() -> None:
    me = os.getpid()
    for _ in range(MAX_ROUNDS):
        for pid in _descendants(me):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if _reap_all():
            return
        time.sleep(0.005)


def _user_tasks() -> int:
    """Tasks (threads count) of this user now: RLIMIT_NPROC counts them all."""
    uid, total = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    total += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                continue
    return total


def _limit(kind: int, value: int, hard: int | None = None) -> None:
    try:
        _, current_hard = resource.getrlimit(kind)
        top = value if hard is None else hard
        if current_hard != resource.RLIM_INFINITY:
            value, top = min(value, current_hard), min(top, current_hard)
        resource.setrlimit(kind, (value, top))
    except (OSError, ValueError):
        pass  # a limit the system will not lower is no reason not to run


def _set_limits(limits: dict[str, int]) -> None:
    _limit(resource.RLIMIT_CORE, 0)
    # The soft CPU limit sends SIGXCPU; the hard one, a second later, SIGKILL.
    _limit(resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1)
    _limit(resource.RLIMIT_DATA, limits["data_bytes"])
    _limit(resource.RLIMIT_FSIZE, limits["file_bytes"])
    _limit(resource.RLIMIT_NPROC, _user_tasks() + limits["processes"])


def main(argv: list[str]) -> int:
    limits, parent, command = json.loads(argv[1]), int(argv[2]), argv[3:]
    signal.signal(signal.SIGTERM, _stop)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # pytest died before the death signal was asked for
        return 1
    _set_limits(limits)
    status: int | None = None
    try:
        child = os.fork()
        if child == 0:
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.execvp(command[0], command)
            except OSError as error:
                os.write(2, f"cannot start {command[0]!r}: {error.strerror}\n".encode())
            os._exit(127)
        _, status = os.waitpid(child, 0)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _kill_everything()
    if status is None:
        return 128 + signal.SIGTERM
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        sys.stdout.flush()
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
