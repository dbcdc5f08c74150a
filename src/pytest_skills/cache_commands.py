"""``--skill-cache-dump`` and ``--skill-cache-merge``: actions on the response cache that
print and exit instead of running tests. The work is in ``execution/dump.py`` and
``execution/merge.py``; this is where pytest's options meet them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


def merge_command(config: pytest.Config) -> int:
    """Merge the named caches into the run's cache directory; one line per source."""
    from pytest_skills.execution.merge import MergeError, merge
    from pytest_skills.execution.secrets import redact, secret_values

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
