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
from pytest_skills.report.text import printable

if TYPE_CHECKING:
    from pytest_skills.settings import Settings

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class Written:
    """One output: where it went, or why it could not be written."""

    what: str
    #: The option that asked for it.
    option: str
    path: Path
    error: str | None = None

    @property
    def line(self) -> str:
        if self.error is None:
            return f"skills: {self.what} written to {self.path}"
        return f"skills: cannot write the report: {self.option}: {self.error}"


def write_outputs(
    summary: RunSummary,
    records: Sequence[ItemRecord],
    settings: Settings,
    redact: Redactor,
) -> list[Written]:
    """Write every output the settings ask for; report each one."""
    jobs: list[tuple[str, str, Path, Callable[[Path], None]]] = []
    if settings.report_path is not None:
        write_json = _json(summary, records, settings, redact)
        jobs.append(("JSON report", "--skill-report", settings.report_path, write_json))
    if settings.html_path is not None:
        write_html = _html(summary, records, settings)
        jobs.append(("HTML report", "--skill-html", settings.html_path, write_html))
    if settings.workspace_dir is not None:
        write_workspace = _workspace(summary, records, settings)
        jobs.append(("workspace", "--skill-workspace", settings.workspace_dir, write_workspace))
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if step_summary and records:
        write_markdown = _markdown(summary, records, redact)
        option = f"the step summary ({STEP_SUMMARY_ENV})"
        jobs.append(("step summary", option, Path(step_summary), write_markdown))
    written = []
    for what, option, path, write in jobs:
        try:
            write(path)
        except Exception as error:  # one writer failing must not cost the others
            said = str(error).strip().splitlines()
            detail = said[0] if said else type(error).__name__
            if not isinstance(error, OSError):
                detail = f"{type(error).__name__}: {detail}"
            hint = "; choose a writable path" if isinstance(error, OSError) else ""
            written.append(Written(what, option, path, printable(redact(detail + hint))))
        else:
            written.append(Written(what, option, path))
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
        with open(path, "a", encoding="utf-8", errors="replace") as handle:
            handle.write(redact(text) + "\n")

    return write
