"""``--skill-cache-dump`` and ``--skill-cache-merge``: actions on the response cache that
print and exit instead of running tests. The work is in ``execution/dump.py`` and
``execution/merge.py``; this is where pytest's options meet them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_skills.path_trap import config_dir
from pytest_skills.settings import resolve

#: The exit status when the cache cannot be dumped or merged (as the textconv module's).
FAILED = 2


def _cache_dir(config: pytest.Config) -> Path:
    return resolve(config).cache_dir


def _given(config: pytest.Config, path: str) -> Path:
    """A path typed on the command line: the shell's, as it is for every action."""
    return config.invocation_params.dir / path


def dump_command(config: pytest.Config) -> int:
    """Print the cache at the given path (else the run's cache directory), or why not."""
    from pytest_skills.execution.dump import DumpError, dump, write

    given = config.option.skill_cache_dump
    path = _given(config, given) if given else _cache_dir(config)
    try:
        lines = dump(path)
    except DumpError as error:
        print(f"pytest-skills: {error}", file=sys.stderr)
        return FAILED
    write(lines, sys.stdout)
    return 0


def moved_rootdir(config: pytest.Config) -> str | None:
    """Why the run's cache directory may not be the project's, or None.

    pytest looks for its rootdir and ini file before plugins add their options, so it
    takes the directories to merge for test paths (pytest-dev/pytest#1435): with sources
    outside the project, or no configuration file, its rootdir, and with it the default
    cache directory and the ini file's ``skill_cache_dir``, is theirs. Merging into a
    cache beside the sources would look like success; the destination must be named.
    """
    option = config.option
    given = option.skill_cache_dir
    if given and Path(given).is_absolute():
        return None  # named in full: the rootdir does not matter
    if option.rootdir or getattr(option, "inifilename", None):
        return None  # the user chose them
    here = config.invocation_params.dir.resolve()
    # As pytest finds them when given no path: the nearest configuration file's
    # directory, else the nearest setup.py's, else where pytest was started.
    intended = config_dir(here) or next(
        (d for d in (here, *here.parents) if (d / "setup.py").is_file()), here
    )
    if config.rootpath.resolve() == intended:
        return None
    return (
        f"pytest took the directories to merge for test paths when it looked for its rootdir "
        f"(pytest-dev/pytest#1435) and chose {config.rootpath}, not {intended}, so this run's "
        "cache directory would be the wrong one: nothing was merged. Name it in full: "
        f"--skill-cache-dir={intended / '.skill-cache'} (or add --rootdir={intended})"
    )


def _said_moved(config: pytest.Config) -> bool:
    """True, having said why, when the run's cache directory may not be the project's."""
    moved = moved_rootdir(config)
    if moved is not None:
        print(f"pytest-skills: {moved}", file=sys.stderr)
    return moved is not None


def merge_command(config: pytest.Config) -> int:
    """Merge the named caches into the run's cache directory; one line per source."""
    from pytest_skills.execution.merge import MergeError, merge
    from pytest_skills.execution.secrets import redact, secret_values

    if _said_moved(config):
        return FAILED
    destination = _cache_dir(config)
    sources = [_given(config, source) for source in config.option.skill_cache_merge]
    secrets = secret_values()
    try:
        merged = merge(destination, sources, secrets)
    except MergeError as error:
        print(f"pytest-skills: {redact(str(error), secrets)}", file=sys.stderr)
        return FAILED
    for source in merged:
        for line in source.lines():
            # Labels and reasons come from the sources: no secret value is shown.
            print(f"skills: {redact(line, secrets)}")
    print(f"skills: merged into the response cache at {destination}")
    return 0


def batch_import_command(config: pytest.Config) -> int:
    """Record the answers of batch output files (vLLM's run-batch) in the run's cache."""
    from pytest_skills.execution.batch_files import BatchFileError, import_output
    from pytest_skills.execution.batch_ledger import Ledger
    from pytest_skills.execution.cache import CacheError, ResponseCache
    from pytest_skills.execution.secrets import redact, secret_values

    if _said_moved(config):
        return FAILED
    directory = _cache_dir(config)
    secrets = secret_values()
    cache = ResponseCache(directory, secrets=secrets)
    status = 0
    try:
        for given in config.option.skill_batch_import:
            try:
                lines = import_output(_given(config, given), Ledger(directory), cache)
            except BatchFileError as error:
                print(f"pytest-skills: {redact(str(error), secrets)}", file=sys.stderr)
                status = FAILED
                continue
            for line in lines:
                print(f"skills: {redact(line, secrets)}")
    finally:
        try:
            cache.close()
        except CacheError as error:
            print(f"pytest-skills: {error}", file=sys.stderr)
            status = FAILED
    return status
