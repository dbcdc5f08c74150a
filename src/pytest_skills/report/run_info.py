"""What a report says about the run itself: models, cache mode, trials, date, version.

The date honours ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention), so two
runs of the same answers can produce byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_skills.settings import Settings

DISTRIBUTION = "pytest-skills"


@dataclass(frozen=True)
class RunInfo:
    #: ``(name as typed, resolved spec)`` of every model the run was asked to use.
    models: tuple[tuple[str, str], ...]
    judge: str | None
    cache_mode: str
    cache_mode_reason: str
    trials: int
    #: The share of a condition's answers that must pass for it to count as passing.
    pass_threshold: float
    baseline: bool
    timestamp: datetime
    plugin_version: str

    @property
    def date_text(self) -> str:
        return self.timestamp.strftime("%Y-%m-%d %H:%M UTC")

    @property
    def iso_timestamp(self) -> str:
        return self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def report_time(environ: Mapping[str, str] = os.environ) -> datetime:
    """Now, or the moment ``SOURCE_DATE_EPOCH`` names (whole seconds, UTC)."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return datetime.now(tz=timezone.utc).replace(microsecond=0)


def plugin_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def run_info(settings: Settings, environ: Mapping[str, str] = os.environ) -> RunInfo:
    return RunInfo(
        models=tuple((m.name, m.resolved) for m in settings.models),
        judge=settings.judge_model.resolved if settings.judge_model else None,
        cache_mode=settings.cache_mode,
        cache_mode_reason=settings.cache_mode_reason,
        trials=settings.trials,
        pass_threshold=settings.pass_threshold,
        baseline=settings.baseline,
        timestamp=report_time(environ),
        plugin_version=plugin_version(),
    )
