"""Call threads may add loggers while pytest walks them (execution/loggers.py)."""

from __future__ import annotations

import logging
import uuid

import pytest

from pytest_skills.execution.loggers import share_loggers_safely


def test_a_logger_added_while_the_loggers_are_walked_does_not_break_the_walk() -> None:
    share_loggers_safely()
    walked = 0
    # What pytest's catching_logs does, with a logger made in the middle, as a call
    # thread's first import does.
    for _ in logging.Logger.manager.loggerDict.values():
        if walked == 0:
            logging.getLogger(f"pytest-skills-test.{uuid.uuid4().hex}")
        walked += 1
    assert walked > 0


def test_the_loggers_are_all_still_there_and_found_by_name() -> None:
    before = dict(logging.Logger.manager.loggerDict)
    share_loggers_safely()
    share_loggers_safely()  # once is enough; again changes nothing
    loggers = logging.Logger.manager.loggerDict
    assert dict(loggers) == before
    name = f"pytest-skills-test.{uuid.uuid4().hex}"
    made = logging.getLogger(name)
    assert loggers[name] is made and logging.getLogger(name) is made


def test_a_plain_dict_would_break_the_walk() -> None:
    # The hazard itself, so the test above is known to test something.
    plain = {"a": 1}
    with pytest.raises(RuntimeError, match="changed size"):
        for _ in plain.values():
            plain[uuid.uuid4().hex] = 2
