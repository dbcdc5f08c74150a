"""The files a run writes: JSON report, HTML page, workspace, GitHub step summary.

Each writer runs on its own: one that fails (a read-only directory, a full disk) is
said in one line, and the others still write. Every text is redacted on its way out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_skills.execution.secrets import Redactor
from pytest_skills.report.records import ItemRecord
from pytest_skills.report.summary import RunSummary

if TYPE_CHECKING:
    from pytest_skills.settings import Settings

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class Written:
    """One output: where it went, or why it could not be written."""

    what: str
    path: Path
    error: str | None = None

    @property
    def line(self) -> str:
        if self.error is None:
            return f"skills: {self.what} written to {self.path}"
        return (
            f"skills: cannot write the report: {self.error} ({self.what}); choose a writable path"
        )


def write_outputs(
    summary: RunSummary,
    records: Sequence[ItemRecord],
    settings: Settings,
    redact: Redactor,
) -> list[Written]:
    """Write every output the settings ask for; report each one."""
    jobs: list[tuple[str, Path, Callable[[Path], None]]] = []
    if settings.report_path is not None:
        jobs.append(
            ("JSON report", settings.report_path, _json(summary, records, settings, redact))
        )
    if settings.html_path is not None:
        jobs.append(("HTML report", settings.html_path, _html(summary, records, settings)))
    if settings.workspace_dir is not None:
        jobs.append(("workspace", settings.workspace_dir, _workspace(summary, records, settings)))
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if step_summary and records:
        jobs.append(("step summary", Path(step_summary), _markdown(summary, records, redact)))
    written = []
    for what, path, write in jobs:
        try:
            write(path)
        except (OSError, ValueError) as error:
            # ValueError: text a codec refuses. Anything else is a bug and shows as one.
            written.append(Written(what, path, redact(str(error))))
        else:
            written.append(Written(what, path))
    return written


def _json(
    summary: RunSummary, records: Sequence[ItemRecord], settings: Settings, redact: Redactor
) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from pytest_skills.report import export

        report = export.to_json(summary.models, records, settings)
        if summary.aa is not None:
            report["aa"] = {
                "comparisons": summary.aa.comparisons,
                "false_verdicts": summary.aa.false_verdicts,
                "rate": summary.aa.rate,
            }
        report = redact.data(report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    return write


def _html(
    summary: RunSummary, records: Sequence[ItemRecord], settings: Settings
) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from pytest_skills.report import html
        from pytest_skills.report.run_info import run_info

        page = html.render(summary.models, records, run_info(settings))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")

    return write


def _workspace(
    summary: RunSummary, records: Sequence[ItemRecord], settings: Settings
) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from pytest_skills.report import workspace
        from pytest_skills.report.run_info import run_info

        workspace.write(path, summary.models, records, run_info(settings))

    return write


def _markdown(
    summary: RunSummary, records: Sequence[ItemRecord], redact: Redactor
) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from pytest_skills.report import export

        text = export.markdown(summary.models, records, summary.problems)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(redact(text) + "\n")

    return write
